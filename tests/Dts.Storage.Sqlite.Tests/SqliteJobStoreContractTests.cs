using Dts.Core.Storage;
using Dts.Testing.StorageContract;

namespace Dts.Storage.Sqlite.Tests;

public sealed class SqliteJobStoreContractTests : JobStoreAdminContract
{
    private readonly string _path = TempDatabase.NewPath();

    protected override Task<IJobStore> CreateStoreAsync() =>
        Task.FromResult<IJobStore>(new SqliteJobStore(TempDatabase.Options(_path)));

    protected override Task<IJobStore>? ReopenStoreAsync() => CreateStoreAsync();

    protected override ValueTask CleanupAsync()
    {
        TempDatabase.Delete(_path);
        return ValueTask.CompletedTask;
    }
}
