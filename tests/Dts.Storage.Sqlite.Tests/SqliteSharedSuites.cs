using Dts.Core.Storage;
using Dts.Testing.StorageContract;

namespace Dts.Storage.Sqlite.Tests;

/// <summary>The shared daemon-operation suite on a SQLite file per test.</summary>
public sealed class SqliteDaemonStoreTests : DaemonStoreContract
{
    private readonly string _path = TempDatabase.NewPath();

    protected override Task<IJobStore> OpenStoreAsync() => Task.FromResult<IJobStore>(new SqliteJobStore(TempDatabase.Options(_path)));

    protected override ValueTask CleanupAsync()
    {
        TempDatabase.Delete(_path);
        return ValueTask.CompletedTask;
    }
}

/// <summary>The shared job-log suite on a SQLite file per test.</summary>
public sealed class SqliteJobLogStoreTests : JobLogStoreContract
{
    private readonly string _path = TempDatabase.NewPath();

    protected override Task<IJobStore> OpenStoreAsync() => Task.FromResult<IJobStore>(new SqliteJobStore(TempDatabase.Options(_path)));

    protected override ValueTask CleanupAsync()
    {
        TempDatabase.Delete(_path);
        return ValueTask.CompletedTask;
    }
}
