using System.Text.Json.Serialization;

namespace Dts.Contracts;

[JsonConverter(typeof(JsonStringEnumConverter<PriorityClass>))]
public enum PriorityClass
{
    [JsonStringEnumMemberName("high")] High = 0,
    [JsonStringEnumMemberName("normal")] Normal = 1,
    [JsonStringEnumMemberName("low")] Low = 2,
}

/// <summary>
/// A job's priority: a class, and within it a value from 0 to 999 where a larger value runs first.
/// Both fold into one rank; a smaller rank is leased first.
/// </summary>
public readonly record struct Priority(PriorityClass Class, int Value)
{
    public const int MinValue = 0;
    public const int MaxValue = 999;
    public const int DefaultValue = 0;

    public static Priority Normal => new(PriorityClass.Normal, DefaultValue);

    public int Rank => (int)Class * 1000 + (MaxValue - Value);

    public static Priority FromRank(int rank) => new((PriorityClass)(rank / 1000), MaxValue - rank % 1000);
}
