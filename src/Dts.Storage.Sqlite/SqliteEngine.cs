using SQLitePCL;

namespace Dts.Storage.Sqlite;

/// <summary>
/// Process-wide settings of the bundled SQLite library, applied once before the first connection opens.
/// Every connection of the store is used by one thread at a time (the writer thread, or one reader at a
/// time from the pool), so SQLite's own per-call connection mutex ("serialized" mode) is pure cost; and
/// its memory statistics take a global mutex on every allocation. Both are turned off here.
/// </summary>
internal static class SqliteEngine
{
    private static readonly Lazy<bool> Configured = new(Configure, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>True when the settings took effect (false when something in the process had already started SQLite).</summary>
    public static bool EnsureConfigured() => Configured.Value;

    private static bool Configure()
    {
        Batteries_V2.Init();
        // sqlite3_config only works before SQLite initialises; if another component already opened a
        // connection it returns SQLITE_MISUSE and SQLite keeps its defaults, which are correct, only slower.
        var threading = raw.sqlite3_config(raw.SQLITE_CONFIG_MULTITHREAD);
        var memstatus = raw.sqlite3_config(raw.SQLITE_CONFIG_MEMSTATUS, 0);
        return threading == raw.SQLITE_OK && memstatus == raw.SQLITE_OK;
    }
}
