using System.Diagnostics;
using System.Globalization;
using System.Text;
using Dts.Client;
using Dts.Contracts;
using Dts.Server;

namespace Dts.Cli.Bench;

/// <summary>
/// The server a benchmark runs against: a <c>dts server</c> child process (the default, so its CPU
/// time and memory are its own), a server inside this process, or an existing one given by URL.
/// </summary>
internal abstract class BenchServer : IAsyncDisposable
{
    public abstract string Url { get; }

    /// <summary>Every server to spread clients and workers over (one, except for a cluster).</summary>
    public virtual IReadOnlyList<string> Urls => [Url];
    public abstract string Description { get; }

    /// <summary>What <see cref="CpuSeconds"/> and <see cref="PeakMemoryMb"/> cover, for the report.</summary>
    public abstract string MeasuredBy { get; }

    /// <summary>User plus system CPU seconds used so far, or null when they cannot be read.</summary>
    public abstract double? CpuSeconds();

    /// <summary>Peak resident memory so far in MB, or null when it cannot be read.</summary>
    public abstract double? PeakMemoryMb();

    /// <summary>Resident memory now in MB, or null when it cannot be read.</summary>
    public abstract double? MemoryMb();

    /// <summary>A user with the given roles; returns its id and secret.</summary>
    public abstract Task<(string User, string Secret)> UserAsync(string name, string[] roles, CancellationToken cancellationToken);

    public abstract ValueTask DisposeAsync();
}

/// <summary>A server inside this process: the figures are the whole process's (server, workers and clients).</summary>
internal sealed class InProcessBenchServer(DtsServer server, Dts.Storage.Sqlite.SqliteSynchronous sync) : BenchServer
{
    private readonly Process _self = Process.GetCurrentProcess();

    public override string Url => server.Url.ToString();
    public override string Description => $"{server.Store.Description} (synchronous={sync}, in this process)";
    public override string MeasuredBy => "whole bench process (server, workers and clients together)";

    public override double? CpuSeconds()
    {
        _self.Refresh();
        return _self.TotalProcessorTime.TotalSeconds;
    }

    public override double? PeakMemoryMb()
    {
        _self.Refresh();
        return _self.PeakWorkingSet64 / 1024.0 / 1024.0;
    }

    public override double? MemoryMb()
    {
        _self.Refresh();
        return _self.WorkingSet64 / 1024.0 / 1024.0;
    }

    public override async Task<(string User, string Secret)> UserAsync(string name, string[] roles, CancellationToken cancellationToken) =>
        (name, await server.CreateUserAsync(name, roles, cancellationToken));

    public override ValueTask DisposeAsync() => server.DisposeAsync();
}

/// <summary>
/// An existing server. With an administrator's credentials, the bench creates its own users (names
/// with a random suffix); otherwise every client and worker uses the given user, which then allows
/// one client only (two clients of one user would take each other's results). CPU and memory are unknown.
/// </summary>
internal sealed class RemoteBenchServer(string url, string user, string secret) : BenchServer
{
    private readonly DtsAdminClient _admin = new(new DtsConnectionOptions { ServerUrl = url, UserId = user, Secret = secret });
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];
    private bool _sharedUser;

    public override string Url => url;
    public override string Description => $"existing server at {url}";
    public override string MeasuredBy => "n/a (existing server: its CPU and memory are not visible from here)";
    public bool SharesOneUser => _sharedUser;
    public override double? CpuSeconds() => null;
    public override double? PeakMemoryMb() => null;
    public override double? MemoryMb() => null;

    public override async Task<(string User, string Secret)> UserAsync(string name, string[] roles, CancellationToken cancellationToken)
    {
        if (!_sharedUser)
        {
            try
            {
                var unique = $"{name}-{_suffix}";
                var created = await _admin.CreateUserAsync(new UserCreateRequest { Name = unique, Roles = [.. roles] }, cancellationToken);
                return (unique, created.Secret);
            }
            catch (DtsApiException ex) when (ex.Status is 401 or 403)
            {
                _sharedUser = true;
            }
        }
        return (user, secret);
    }

    public override ValueTask DisposeAsync()
    {
        _admin.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// <c>dts server</c> as a child process on a free loopback port. Its CPU time and peak memory are
/// read from /proc/&lt;pid&gt;; users are created through the admin API with the secret the first
/// start writes to the data directory.
/// </summary>
internal sealed class ChildBenchServer : BenchServer
{
    // USER_HZ: the unit of utime and stime in /proc/<pid>/stat; 100 on every mainstream Linux build.
    private const double TicksPerSecond = 100.0;
    private readonly Process _process;
    private readonly StringBuilder _log = new();
    private readonly DtsAdminClient _admin;
    private readonly string _url;
    private readonly string _description;

    private ChildBenchServer(Process process, string url, string description, DtsAdminClient admin)
    {
        _process = process;
        _url = url;
        _description = description;
        _admin = admin;
    }

    public int Pid => _process.Id;
    public override string Url => _url;
    public override string Description => _description;
    public override string MeasuredBy => $"server process alone (pid {_process.Id}, /proc/<pid>/stat and VmHWM)";

    /// <summary>The data directory the child was started with (its key file is there).</summary>
    public string DataDirectory { get; private init; } = "";

    /// <summary>The administrator secret the bench uses to create its users on this server.</summary>
    public string AdminSecret { get; private init; } = "";

    /// <summary>
    /// Starts a <c>dts server</c> child. <paramref name="joining"/> is a server already running on the
    /// same (shared) store: this one then uses its key file and administrator instead of a first-start one.
    /// </summary>
    public static async Task<ChildBenchServer> StartAsync(string dataDir, string? store, string? schema, Dts.Storage.Sqlite.SqliteSynchronous sync,
        CancellationToken cancellationToken, ChildBenchServer? joining = null)
    {
        Directory.CreateDirectory(dataDir);
        var urlFile = Path.Combine(dataDir, "url");
        File.Delete(urlFile);
        var info = SelfCommand();
        foreach (var a in new[] { "server", "--url", "http://127.0.0.1:0", "--data-dir", dataDir, "--url-file", urlFile, "--sync", sync.ToString() })
            info.ArgumentList.Add(a);
        if (store is not null)
        {
            info.ArgumentList.Add("--store");
            info.ArgumentList.Add(store);
        }
        if (schema is not null)
        {
            info.ArgumentList.Add("--schema");
            info.ArgumentList.Add(schema);
        }
        if (joining is not null)
        {
            info.ArgumentList.Add("--key-file");
            info.ArgumentList.Add(Path.Combine(joining.DataDirectory, Dts.Core.Security.SecretKeyFile.DefaultFileName));
        }
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.UseShellExecute = false;
        info.Environment["Logging__LogLevel__Default"] = "Warning";
        var process = new Process { StartInfo = info };
        var log = new StringBuilder();
        void Keep(string? line)
        {
            if (line is null) return;
            lock (log)
            {
                if (log.Length < 64 * 1024) log.AppendLine(line);
            }
        }
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var url = await WaitForFileAsync(process, urlFile, log, TimeSpan.FromSeconds(60), cancellationToken);
            var secretFile = Path.Combine(dataDir, "admin.secret");
            if (joining is null && !File.Exists(secretFile))
                throw new InvalidOperationException($"the server's store has users already, so no first admin secret was written to {secretFile}; start an empty store (for PostgreSQL, leave out --schema and DTS_SCHEMA: the bench then makes a schema of its own) or use --server with --user and --secret");
            var secret = joining?.AdminSecret ?? (await File.ReadAllTextAsync(secretFile, cancellationToken)).Trim();
            var admin = new DtsAdminClient(new DtsConnectionOptions { ServerUrl = url, UserId = "admin", Secret = secret });
            var description = store is null ? $"SQLite default (synchronous={sync})"
                : schema is null ? $"--store {Redact(store)} (synchronous={sync} if SQLite)"
                : $"--store {Redact(store)}, schema {schema}";
            var server = new ChildBenchServer(process, url, description, admin) { DataDirectory = dataDir, AdminSecret = secret };
            foreach (var l in log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)) server._log.AppendLine(l);
            return server;
        }
        catch
        {
            Stop(process);
            process.Dispose();
            throw;
        }
    }

    /// <summary>How to run this same dts: the apphost directly, or <c>dotnet dts.dll</c>.</summary>
    private static ProcessStartInfo SelfCommand()
    {
        var host = Environment.ProcessPath ?? "dotnet";
        if (Path.GetFileNameWithoutExtension(host).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
        {
            var info = new ProcessStartInfo(host);
            info.ArgumentList.Add(typeof(ChildBenchServer).Assembly.Location);
            return info;
        }
        return new ProcessStartInfo(host);
    }

    private static string Redact(string store) =>
        System.Text.RegularExpressions.Regex.Replace(store, "(?i)(password|pwd)=[^;]*", "$1=***");

    private static async Task<string> WaitForFileAsync(Process process, string path, StringBuilder log, TimeSpan limit, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + limit;
        while (DateTime.UtcNow < deadline)
        {
            if (File.Exists(path))
            {
                var text = (await File.ReadAllTextAsync(path, cancellationToken)).Trim();
                if (text.Length > 0) return text;
            }
            if (process.HasExited)
            {
                string output;
                lock (log) output = log.ToString();
                throw new InvalidOperationException($"the dts server child exited with {process.ExitCode} before listening:\n{output}");
            }
            await Task.Delay(50, cancellationToken);
        }
        throw new TimeoutException($"the dts server child did not start listening within {limit.TotalSeconds} s");
    }

    public override async Task<(string User, string Secret)> UserAsync(string name, string[] roles, CancellationToken cancellationToken)
    {
        var created = await _admin.CreateUserAsync(new UserCreateRequest { Name = name, Roles = [.. roles] }, cancellationToken);
        return (name, created.Secret);
    }

    public override double? CpuSeconds()
    {
        try
        {
            // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
            var stat = File.ReadAllText($"/proc/{_process.Id}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var utime = long.Parse(fields[11], CultureInfo.InvariantCulture);
            var stime = long.Parse(fields[12], CultureInfo.InvariantCulture);
            return (utime + stime) / TicksPerSecond;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    public override double? PeakMemoryMb() => StatusKb("VmHWM:") / 1024.0;
    public override double? MemoryMb() => StatusKb("VmRSS:") / 1024.0;

    private double? StatusKb(string key)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
            {
                if (!line.StartsWith(key, StringComparison.Ordinal)) continue;
                var value = line[key.Length..].Trim();
                return double.Parse(value.Split(' ')[0], CultureInfo.InvariantCulture);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
        }
        return null;
    }

    private static void Stop(Process process)
    {
        if (process.HasExited) return;
        try
        {
            // SIGTERM first: the server stops gracefully; SIGKILL if it takes too long.
            using var kill = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]);
            kill?.WaitForExit();
            if (!process.WaitForExit(TimeSpan.FromSeconds(15))) process.Kill(entireProcessTree: true);
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // Gone already.
        }
    }

    public override async ValueTask DisposeAsync()
    {
        _admin.Dispose();
        await Task.Run(() => Stop(_process));
        _process.Dispose();
    }
}

/// <summary>
/// Several <c>dts server</c> children on one shared (PostgreSQL) store: clients and workers are
/// spread over them; CPU and memory are the sums over all of them.
/// </summary>
internal sealed class ClusterBenchServer(IReadOnlyList<ChildBenchServer> members) : BenchServer
{
    public static async Task<ClusterBenchServer> StartAsync(int count, string workDir, string store, string? schema, Dts.Storage.Sqlite.SqliteSynchronous sync,
        CancellationToken cancellationToken)
    {
        var members = new List<ChildBenchServer>();
        try
        {
            for (var i = 0; i < count; i++)
                members.Add(await ChildBenchServer.StartAsync(Path.Combine(workDir, $"server-{i + 1}"), store, schema, sync, cancellationToken, i == 0 ? null : members[0]));
            return new ClusterBenchServer(members);
        }
        catch
        {
            foreach (var m in members) await m.DisposeAsync();
            throw;
        }
    }

    public override string Url => members[0].Url;
    public override IReadOnlyList<string> Urls => [.. members.Select(m => m.Url)];
    public override string Description => $"{members.Count} servers on {members[0].Description}";
    public override string MeasuredBy => $"the {members.Count} server processes together (pids {string.Join(", ", members.Select(m => m.Pid))}; CPU and peak memory summed)";

    public override double? CpuSeconds() => Sum(m => m.CpuSeconds());
    public override double? PeakMemoryMb() => Sum(m => m.PeakMemoryMb());
    public override double? MemoryMb() => Sum(m => m.MemoryMb());

    private double? Sum(Func<ChildBenchServer, double?> figure)
    {
        double total = 0;
        foreach (var m in members)
        {
            if (figure(m) is not { } v) return null;
            total += v;
        }
        return total;
    }

    public override Task<(string User, string Secret)> UserAsync(string name, string[] roles, CancellationToken cancellationToken) =>
        members[0].UserAsync(name, roles, cancellationToken);

    public override async ValueTask DisposeAsync()
    {
        foreach (var m in members) await m.DisposeAsync();
    }
}
