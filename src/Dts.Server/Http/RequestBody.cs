using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Dts.Contracts;
using Dts.Core;
using Microsoft.AspNetCore.Http;

namespace Dts.Server.Http;

/// <summary>Reads request bodies with a size limit and turns JSON failures into precise 4xx errors.</summary>
public static class RequestBody
{
    /// <summary>Reads the whole body, refusing it with 413 as soon as it passes <paramref name="limit"/>.</summary>
    /// <remarks>
    /// With a Content-Length (every SDK request) the body is read straight into an array of exactly
    /// that size: no growing buffer and no copy, which matter because every signed request goes
    /// through here. Kestrel never hands out more than the declared length, and a body that ends
    /// early fails inside Kestrel's read. Without one (chunked), it grows a buffer as it reads.
    /// </remarks>
    public static async Task<byte[]> ReadAsync(HttpRequest request, long limit, CancellationToken cancellationToken)
    {
        if (request.ContentLength is { } declared)
        {
            if (declared > limit)
                throw new DtsException(ErrorCodes.PayloadTooLarge, $"The body has {declared} bytes; this endpoint accepts at most {limit}.");
            if (declared == 0) return [];
            var body = new byte[declared];
            var filled = await request.Body.ReadAtLeastAsync(body, body.Length, throwOnEndOfStream: false, cancellationToken);
            return filled == body.Length ? body : body[..filled];
        }

        var buffer = new ArrayBufferWriter<byte>(4096);
        while (true)
        {
            var read = await request.Body.ReadAsync(buffer.GetMemory(), cancellationToken);
            if (read == 0) break;
            buffer.Advance(read);
            if (buffer.WrittenCount > limit)
                throw new DtsException(ErrorCodes.PayloadTooLarge, $"The body is larger than the {limit} bytes this endpoint accepts.");
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Deserialises a body. Syntax errors become malformed_json, fields the type does not have
    /// unknown_field, and values of a wrong type invalid_field, each naming the JSON path.
    /// </summary>
    public static T Parse<T>(ReadOnlySpan<byte> body, JsonTypeInfo<T> typeInfo) where T : class
    {
        if (body.IsEmpty) throw new DtsException(ErrorCodes.MalformedJson, "The request needs a JSON object body.");
        T? value;
        try
        {
            value = JsonSerializer.Deserialize(body, typeInfo);
        }
        catch (JsonException ex)
        {
            throw Classify(body, ex);
        }
        return value ?? throw new DtsException(ErrorCodes.InvalidField, "The body must be a JSON object, not null.");
    }

    private static DtsException Classify(ReadOnlySpan<byte> body, JsonException ex)
    {
        try
        {
            using var _ = JsonDocument.Parse(body.ToArray());
        }
        catch (JsonException syntax)
        {
            return new DtsException(ErrorCodes.MalformedJson,
                $"The body is not valid JSON (line {syntax.LineNumber + 1}, byte {syntax.BytePositionInLine + 1}).");
        }

        var path = ex.Path is null ? null : ex.Path.TrimStart('$', '.');
        if (ex.Message.Contains("could not be mapped", StringComparison.Ordinal))
        {
            var member = UnmappedMember(ex.Message);
            var field = string.IsNullOrEmpty(path) ? member : path;
            return new DtsException(ErrorCodes.UnknownField, $"The field '{field}' is not accepted here; see docs/protocol.md for the fields of this request.", field);
        }
        return new DtsException(ErrorCodes.InvalidField,
            string.IsNullOrEmpty(path) ? "The body has a value of the wrong type." : $"The field '{path}' has a value of the wrong type.", path);
    }

    // System.Text.Json names the unmapped member in quotes: "The JSON property 'x' could not be mapped ...".
    private static string? UnmappedMember(string message)
    {
        var start = message.IndexOf('\'', StringComparison.Ordinal);
        if (start < 0) return null;
        var end = message.IndexOf('\'', start + 1);
        return end > start ? message[(start + 1)..end] : null;
    }

    public static bool IsJsonContentType(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType)) return false;
        var semi = contentType.IndexOf(';', StringComparison.Ordinal);
        var media = (semi < 0 ? contentType : contentType[..semi]).Trim();
        return media.Equals("application/json", StringComparison.OrdinalIgnoreCase);
    }
}
