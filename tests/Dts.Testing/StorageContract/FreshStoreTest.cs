using Dts.Core.Storage;

namespace Dts.Testing.StorageContract;

/// <summary>
/// A fresh, migrated store per test for the shared store suites; each backend's test project says
/// how to open one (<see cref="OpenStoreAsync"/>) and how to throw it away (<see cref="CleanupAsync"/>).
/// </summary>
public abstract class FreshStoreTest : IAsyncLifetime
{
    protected IJobStore _store = null!;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A new, empty, not yet migrated store.</summary>
    protected abstract Task<IJobStore> OpenStoreAsync();

    /// <summary>Deletes what <see cref="OpenStoreAsync"/> made, after the store is disposed.</summary>
    protected virtual ValueTask CleanupAsync() => ValueTask.CompletedTask;

    public virtual async ValueTask InitializeAsync()
    {
        _store = await OpenStoreAsync();
        await _store.MigrateAsync(Ct);
    }

    public virtual async ValueTask DisposeAsync()
    {
        if (_store is not null) await _store.DisposeAsync();
        await CleanupAsync();
        GC.SuppressFinalize(this);
    }
}
