using Dts.Contracts;

namespace Dts.Core;

/// <summary>A failure to report to the caller as a problem document with a stable code.</summary>
public sealed class DtsException(ErrorCode error, string? detail = null, string? field = null)
    : Exception(detail ?? error.Title)
{
    public ErrorCode Error { get; } = error;
    public string? Field { get; } = field;
}
