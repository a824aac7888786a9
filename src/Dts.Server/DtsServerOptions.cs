namespace Dts.Server;

/// <summary>Settings of one server process. Each default is documented where it is declared, and in docs/operations.md.</summary>
public sealed class DtsServerOptions
{
    /// <summary>Where the server keeps its SQLite file and the first admin secret: <c>~/.local/share/dts</c> (or <c>$XDG_DATA_HOME/dts</c>).</summary>
    public static string DefaultDataDirectory
    {
        get
        {
            var xdg = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
            var root = string.IsNullOrEmpty(xdg)
                ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share")
                : xdg;
            return Path.Combine(root, "dts");
        }
    }

    /// <summary>Listen address; port 0 picks a free port. Default <c>http://127.0.0.1:7460</c>.</summary>
    public string Url { get; set; } = "http://127.0.0.1:7460";

    public string DataDirectory { get; set; } = DefaultDataDirectory;

    /// <summary>
    /// The store: a SQLite file (default <c>dts.db</c> in the data directory), or a PostgreSQL
    /// database given as a connection string (<c>Host=db1;Database=dts;Username=dts</c>) or a URL
    /// (<c>postgres://dts@db1/dts</c>). Several servers may share one PostgreSQL database.
    /// </summary>
    public string? StorePath { get; set; }

    /// <summary>The PostgreSQL schema that holds Dts's tables: <c>dts</c>. Ignored for SQLite.</summary>
    public string PostgresSchema { get; set; } = "dts";

    /// <summary>True when <see cref="StorePath"/> names a PostgreSQL database rather than a SQLite file.</summary>
    public bool UsesPostgres => StorePath is not null && Dts.Storage.Postgres.PostgresConnectionStrings.LooksLikePostgres(StorePath);

    /// <summary>
    /// How the SQLite store flushes commits: <c>Full</c> (default) fsyncs every group commit, so an
    /// acknowledged job survives a power loss; <c>Normal</c> survives a crash of the server process
    /// (kill -9) but not of the machine.
    /// </summary>
    public Dts.Storage.Sqlite.SqliteSynchronous Synchronous { get; set; } = Dts.Storage.Sqlite.SqliteSynchronous.Full;

    /// <summary>Where the first start writes the generated admin secret; default <c>admin.secret</c> in the data directory.</summary>
    public string? AdminSecretFile { get; set; }

    /// <summary>
    /// The 32-byte key that encrypts users' secrets in the store; default <c>secrets.key</c> in the
    /// data directory. Created (owner-only) on first start. Back it up apart from the database:
    /// without it no stored secret can be read.
    /// </summary>
    public string? KeyFile { get; set; }

    /// <summary>PEM certificate (chain) for HTTPS; with <see cref="TlsKeyFile"/>. The URL must then be https://.</summary>
    public string? TlsCertificateFile { get; set; }

    /// <summary>PEM private key of <see cref="TlsCertificateFile"/>.</summary>
    public string? TlsKeyFile { get; set; }

    /// <summary>A PKCS#12 (.pfx) file with certificate and key, instead of the PEM pair.</summary>
    public string? TlsPfxFile { get; set; }

    /// <summary>The password of <see cref="TlsPfxFile"/>, if it has one.</summary>
    public string? TlsPfxPassword { get; set; }

    /// <summary>True when a certificate is configured and the server speaks HTTPS.</summary>
    public bool UsesTls => TlsCertificateFile is not null || TlsPfxFile is not null;

    /// <summary>How often workers are asked to send heartbeats: 3 seconds.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>A lease not renewed by a heartbeat for this long expires and its job is queued again: 15 seconds.</summary>
    public TimeSpan LeaseTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How far a request's timestamp may be from the server's clock: 300 seconds either way.</summary>
    public TimeSpan SignatureWindow { get; set; } = TimeSpan.FromSeconds(300);

    /// <summary>The largest body of a single-job request: 1 MiB.</summary>
    public long MaxBodyBytes { get; set; } = 1 << 20;

    /// <summary>The largest body of a batch request: 64 MiB.</summary>
    public long MaxBatchBodyBytes { get; set; } = 64L << 20;

    /// <summary>How long a user record is cached between store reads: 2 seconds.</summary>
    public TimeSpan UserCacheTime { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// With a store shared by several servers (PostgreSQL): the longest a long poll or a daemon
    /// sleeps without looking in the store, in case a wake-up from another server was lost: 2 seconds.
    /// </summary>
    public TimeSpan ClusterPollInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>With a shared store: how often each server takes or confirms the leader lock: 500 ms (also the longest a takeover waits after the leader's connection is gone).</summary>
    public TimeSpan LeaderCheckInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How often the lease rescuer looks for expired leases: 1 second.</summary>
    public TimeSpan RescueInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The scheduler's longest sleep when nothing is due: 1 second (it also wakes when a job is scheduled).</summary>
    public TimeSpan SchedulerMaxSleep { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Most lines one job's log keeps (the last is the note that the log was cut): 10,000.</summary>
    public long LogMaxLinesPerJob { get; set; } = 10_000;

    /// <summary>Most bytes of text (UTF-8) one job's log keeps: 1 MiB.</summary>
    public long LogMaxBytesPerJob { get; set; } = 1 << 20;

    /// <summary>E-mail alerts (worker lost, job dead, backlog); off until <see cref="Notifications.SmtpSettings.Host"/> is set.</summary>
    public Notifications.SmtpSettings Smtp { get; set; } = new();

    /// <summary>How often the alert watcher looks for lost workers and long backlogs: 5 seconds.</summary>
    public TimeSpan AlertCheckInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Alert when a function has more than this many queued jobs; null (default) never alerts on backlog.</summary>
    public long? BacklogAlertThreshold { get; set; }

    /// <summary>How long past its timeout a running job may still run before the server fails it (the worker should have stopped it first): 5 seconds.</summary>
    public TimeSpan TimeoutGrace { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the server looks for running jobs past their timeout: 1 second.</summary>
    public TimeSpan TimeoutInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How often the porter looks for results to delete: 30 seconds (at once again after a full batch).</summary>
    public TimeSpan PorterInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Most jobs the porter deletes in one transaction: 500.</summary>
    public int PorterBatchSize { get; set; } = 500;

    /// <summary>How long a finished job stays after its result was acknowledged (for admin look-ups): 1 hour. Unacknowledged results stay for their retention.</summary>
    public TimeSpan AcknowledgedResultGrace { get; set; } = TimeSpan.FromHours(1);

    public string ResolvedStorePath => StorePath ?? Path.Combine(DataDirectory, "dts.db");
    public string ResolvedKeyFile => KeyFile ?? Path.Combine(DataDirectory, Dts.Core.Security.SecretKeyFile.DefaultFileName);
    public string ResolvedAdminSecretFile => AdminSecretFile ?? Path.Combine(DataDirectory, "admin.secret");
}
