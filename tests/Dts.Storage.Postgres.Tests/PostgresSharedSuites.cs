using Dts.Core.Storage;
using Dts.Testing.Postgres;
using Dts.Testing.StorageContract;

namespace Dts.Storage.Postgres.Tests;

/// <summary>The shared daemon-operation suite on a fresh PostgreSQL schema per test.</summary>
public sealed class PostgresDaemonStoreTests : DaemonStoreContract
{
    private PostgresTestDatabase? _database;

    protected override Task<IJobStore> OpenStoreAsync()
    {
        _database = PostgresTestDatabase.Create();
        return Task.FromResult<IJobStore>(_database.NewStore());
    }

    protected override async ValueTask CleanupAsync()
    {
        if (_database is not null) await _database.DisposeAsync();
    }
}

/// <summary>The shared job-log suite on a fresh PostgreSQL schema per test.</summary>
public sealed class PostgresJobLogStoreTests : JobLogStoreContract
{
    private PostgresTestDatabase? _database;

    protected override Task<IJobStore> OpenStoreAsync()
    {
        _database = PostgresTestDatabase.Create();
        return Task.FromResult<IJobStore>(_database.NewStore());
    }

    protected override async ValueTask CleanupAsync()
    {
        if (_database is not null) await _database.DisposeAsync();
    }
}
