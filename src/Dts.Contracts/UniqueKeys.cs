namespace Dts.Contracts;

/// <summary>
/// The two kinds of unique key. A key that begins with <see cref="AutomaticPrefix"/> (exactly,
/// case-sensitive) is automatic: the client SDK gives one to every job submitted without a key, so
/// that a resent submit attaches to the job the first send stored. A job holds its automatic key in
/// every state, finished ones included, until its row is purged, so a late resend still finds it.
/// Any other key is the caller's: it is held only while its job is unfinished (queued, scheduled,
/// running, awaiting retry) and is free again once that job has ended.
/// </summary>
public static class UniqueKeys
{
    /// <summary>The start of an automatic unique key: <c>dts-auto:</c>.</summary>
    public const string AutomaticPrefix = "dts-auto:";

    /// <summary>True when <paramref name="key"/> is an automatic key (begins with <see cref="AutomaticPrefix"/>).</summary>
    public static bool IsAutomatic(string key) => key.StartsWith(AutomaticPrefix, StringComparison.Ordinal);
}
