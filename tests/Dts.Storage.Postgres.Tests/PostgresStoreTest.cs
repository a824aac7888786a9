using Dts.Testing.Postgres;

namespace Dts.Storage.Postgres.Tests;

/// <summary>A fresh, migrated PostgreSQL store in its own schema per test, dropped afterwards.</summary>
public abstract class PostgresStoreTest : IAsyncLifetime
{
    protected PostgresTestDatabase _database = null!;
    protected PostgresJobStore _store = null!;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    public virtual async ValueTask InitializeAsync()
    {
        _database = PostgresTestDatabase.Create();
        _store = _database.NewStore();
        await _store.MigrateAsync(Ct);
    }

    public virtual async ValueTask DisposeAsync()
    {
        if (_store is not null) await _store.DisposeAsync();
        if (_database is not null) await _database.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}
