using System.Net;
using Dts.Contracts;

namespace Dts.Client;

/// <summary>A failed answer from a Dts server, carrying the problem document's stable code.</summary>
public sealed class DtsApiException : Exception
{
    public DtsApiException(int status, string? code, string? detail, string? field = null, TimeSpan? retryAfter = null)
        : base(FormatMessage(status, code, detail, field))
    {
        Status = status;
        Code = code;
        Detail = detail;
        Field = field;
        RetryAfter = retryAfter;
    }

    public DtsApiException()
        : this(0, null, null)
    {
    }

    public DtsApiException(string message)
        : base(message)
    {
    }

    public DtsApiException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The HTTP status of the answer.</summary>
    public int Status { get; }

    /// <summary>The stable error code (see <see cref="ErrorCodes"/>); null when the body was not a problem document.</summary>
    public string? Code { get; }

    public string? Detail { get; }

    /// <summary>For a validation error: the JSON path of the offending field.</summary>
    public string? Field { get; }

    /// <summary>The server's Retry-After, when it sent one.</summary>
    public TimeSpan? RetryAfter { get; }

    public HttpStatusCode StatusCode => (HttpStatusCode)Status;

    public bool Is(ErrorCode code) => string.Equals(Code, code.Code, StringComparison.Ordinal);

    private static string FormatMessage(int status, string? code, string? detail, string? field)
    {
        var text = code is null ? $"HTTP {status}" : $"{code} (HTTP {status})";
        if (!string.IsNullOrEmpty(detail)) text += $": {detail}";
        if (!string.IsNullOrEmpty(field)) text += $" [field {field}]";
        return text;
    }
}
