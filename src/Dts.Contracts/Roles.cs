namespace Dts.Contracts;

/// <summary>The roles a user can hold; a user may hold several.</summary>
public static class Roles
{
    /// <summary>Everything, including other users' jobs and the admin API.</summary>
    public const string Administrator = "administrator";
    /// <summary>Submit jobs, read and cancel its own jobs, receive its own results.</summary>
    public const string Client = "client";
    /// <summary>Register as a worker, lease jobs and report on them.</summary>
    public const string Worker = "worker";

    public static readonly IReadOnlyList<string> All = [Administrator, Client, Worker];

    public static bool IsKnown(string role) => All.Contains(role, StringComparer.Ordinal);
}
