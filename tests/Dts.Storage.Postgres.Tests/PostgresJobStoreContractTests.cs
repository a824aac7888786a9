using Dts.Core.Storage;
using Dts.Testing.Postgres;
using Dts.Testing.StorageContract;

namespace Dts.Storage.Postgres.Tests;

/// <summary>The storage contract on PostgreSQL: a fresh schema per test, dropped afterwards.</summary>
public sealed class PostgresJobStoreContractTests : JobStoreAdminContract
{
    private PostgresTestDatabase? _database;

    protected override Task<IJobStore> CreateStoreAsync()
    {
        _database ??= PostgresTestDatabase.Create();
        return Task.FromResult<IJobStore>(_database.NewStore());
    }

    protected override Task<IJobStore>? ReopenStoreAsync() => CreateStoreAsync();

    protected override async ValueTask CleanupAsync()
    {
        if (_database is not null) await _database.DisposeAsync();
    }
}
