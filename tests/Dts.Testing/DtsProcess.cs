using System.Diagnostics;
using System.Text;

namespace Dts.Testing;

/// <summary>
/// A real <c>dts</c> child process (the built Dts.Cli), with its output captured. Disposing kills
/// it with its whole process tree, so a failed test leaves nothing running.
/// </summary>
public sealed class DtsProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private DtsProcess(Process process)
    {
        _process = process;
    }

    public int Id => _process.Id;
    public string Stdout { get { lock (_stdout) return _stdout.ToString(); } }
    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    /// <summary>The built dts.dll next to this test build (same configuration).</summary>
    public static string CliPath
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            var configuration = dir.Parent?.Name ?? "Debug";
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Dts.slnx"))) dir = dir.Parent;
            if (dir is null) throw new InvalidOperationException("cannot find the repository root (Dts.slnx) above " + AppContext.BaseDirectory);
            var path = Path.Combine(dir.FullName, "src", "Dts.Cli", "bin", configuration, "net10.0", "dts.dll");
            if (!File.Exists(path)) throw new InvalidOperationException($"{path} is missing; build src/Dts.Cli first");
            return path;
        }
    }

    public static DtsProcess Start(IEnumerable<string> args, IDictionary<string, string>? environment = null, string? stdin = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(CliPath);
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var key in new[] { "DTS_URL", "DTS_USER", "DTS_SECRET" }) info.Environment.Remove(key);
        if (environment is not null)
        {
            foreach (var (k, v) in environment) info.Environment[k] = v;
        }
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var p = new DtsProcess(process);
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (p._stdout) p._stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (p._stderr) p._stderr.AppendLine(e.Data); };
        process.Exited += (_, _) => p._exited.TrySetResult();
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (stdin is not null) process.StandardInput.Write(stdin);
        process.StandardInput.Close();
        return p;
    }

    /// <summary>Runs a dts command to its end and returns its exit code; fails the test if it takes longer than the limit.</summary>
    public static async Task<DtsProcess> RunAsync(IEnumerable<string> args, TimeSpan? limit = null, IDictionary<string, string>? environment = null, string? stdin = null)
    {
        var p = Start(args, environment, stdin);
        await p.WaitForExitAsync(limit ?? TimeSpan.FromSeconds(60));
        return p;
    }

    public async Task WaitForExitAsync(TimeSpan limit)
    {
        var finished = await Task.WhenAny(_exited.Task, Task.Delay(limit));
        if (finished != _exited.Task)
        {
            Kill();
            throw new TimeoutException($"dts did not exit within {limit.TotalSeconds} s. stdout:\n{Stdout}\nstderr:\n{Stderr}");
        }
        // Exited fires before the output pipes are drained; this waits for them.
        await _process.WaitForExitAsync();
    }

    /// <summary>Waits until a file appears with content, for example a server's --url-file.</summary>
    public async Task<string> WaitForFileAsync(string path, TimeSpan limit)
    {
        var deadline = DateTime.UtcNow + limit;
        while (DateTime.UtcNow < deadline)
        {
            if (File.Exists(path))
            {
                var text = (await File.ReadAllTextAsync(path)).Trim();
                if (text.Length > 0) return text;
            }
            if (HasExited) throw new InvalidOperationException($"dts exited with {ExitCode} before writing {path}. stderr:\n{Stderr}");
            await Task.Delay(50);
        }
        throw new TimeoutException($"{path} did not appear within {limit.TotalSeconds} s. stderr:\n{Stderr}");
    }

    /// <summary>SIGKILL: no chance to clean up, as in a crash.</summary>
    public void Kill()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    /// <summary>SIGTERM: asks for a graceful stop.</summary>
    public void Terminate()
    {
        if (!_process.HasExited) Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])?.WaitForExit();
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        try
        {
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
        }
        _process.Dispose();
    }
}
