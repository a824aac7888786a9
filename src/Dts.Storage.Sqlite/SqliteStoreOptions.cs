using System.ComponentModel.DataAnnotations;

namespace Dts.Storage.Sqlite;

/// <summary>How SQLite flushes a commit to disk (<c>PRAGMA synchronous</c>).</summary>
public enum SqliteSynchronous
{
    /// <summary>No fsync: a power loss can lose recent commits. For benchmarks and throwaway data only.</summary>
    Off,
    /// <summary>In WAL mode a commit survives a crash of the process but not necessarily a power loss.</summary>
    Normal,
    /// <summary>Every commit is fsynced before it is acknowledged: survives a power loss.</summary>
    Full,
}

public sealed class SqliteStoreOptions
{
    /// <summary>Operations in one group commit unless told otherwise.</summary>
    public const int DefaultMaxBatchOps = 512;
    /// <summary>Writes waiting for the writer before callers wait to enqueue, unless told otherwise.</summary>
    public const int DefaultQueueCapacity = 16_384;
    /// <summary>How long a statement waits for a lock held by another connection or process: 5 seconds.</summary>
    public static readonly TimeSpan DefaultBusyTimeout = TimeSpan.FromSeconds(5);
    /// <summary>Idle read connections kept open unless told otherwise.</summary>
    public const int DefaultMaxIdleReaders = 8;

    /// <summary>The database file. Created on first use; its directory must exist.</summary>
    [Required]
    public string Path { get; set; } = "";

    /// <summary>Full by default, so that an acknowledged write survives a power loss.</summary>
    public SqliteSynchronous Synchronous { get; set; } = SqliteSynchronous.Full;

    /// <summary>The most write operations committed in one transaction. Default <see cref="DefaultMaxBatchOps"/>.</summary>
    [Range(1, 100_000)]
    public int MaxBatchOps { get; set; } = DefaultMaxBatchOps;

    /// <summary>The most writes waiting for the writer loop. Default <see cref="DefaultQueueCapacity"/>.</summary>
    [Range(1, 10_000_000)]
    public int QueueCapacity { get; set; } = DefaultQueueCapacity;

    /// <summary>Default <see cref="DefaultBusyTimeout"/>.</summary>
    public TimeSpan BusyTimeout { get; set; } = DefaultBusyTimeout;

    /// <summary>
    /// Encrypts users' secrets on their way into the file and decrypts them on the way out. Required:
    /// the store refuses to open without one, so that no code path can write a plaintext secret.
    /// The server and <c>dts server add-user</c> build it from the same key file.
    /// </summary>
    public Dts.Core.Security.ISecretCipher? SecretCipher { get; set; }

    /// <summary>Default <see cref="DefaultMaxIdleReaders"/>.</summary>
    [Range(0, 1024)]
    public int MaxIdleReaders { get; set; } = DefaultMaxIdleReaders;
}
