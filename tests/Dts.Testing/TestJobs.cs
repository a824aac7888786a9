using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;

namespace Dts.Testing;

/// <summary>The plain job the storage tests insert: owner alice, no arguments, normal priority, due at once.</summary>
public static class TestJobs
{
    public static NewJob New(DateTimeOffset at, string function = "f", string? uniqueKey = null, TimeSpan? timeout = null,
        TimeSpan? retention = null, int maxAttempts = 3) => new()
        {
            Id = JobIds.New(at),
            Function = function,
            Owner = "alice",
            ArgsJson = "[]",
            KwargsJson = "{}",
            Priority = Priority.Normal,
            UniqueKey = uniqueKey,
            RunAt = at,
            MaxAttempts = maxAttempts,
            Timeout = timeout,
            Retention = retention ?? TimeSpan.FromDays(1),
        };
}
