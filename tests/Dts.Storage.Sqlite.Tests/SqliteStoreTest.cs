namespace Dts.Storage.Sqlite.Tests;

/// <summary>A fresh, migrated SQLite store in a temporary file per test, deleted with its -wal and -shm afterwards.</summary>
public abstract class SqliteStoreTest : IAsyncLifetime
{
    protected readonly string _path = TempDatabase.NewPath();
    protected SqliteJobStore _store = null!;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    public virtual async ValueTask InitializeAsync()
    {
        _store = new SqliteJobStore(TempDatabase.Options(_path));
        await _store.MigrateAsync(Ct);
    }

    public virtual async ValueTask DisposeAsync()
    {
        await _store.DisposeAsync();
        TempDatabase.Delete(_path);
        GC.SuppressFinalize(this);
    }
}
