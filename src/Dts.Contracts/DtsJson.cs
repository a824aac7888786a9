using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dts.Contracts;

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    AllowTrailingCommas = false,
    ReadCommentHandling = JsonCommentHandling.Disallow)]
[JsonSerializable(typeof(SubmitJobRequest))]
[JsonSerializable(typeof(SubmitBatchRequest))]
[JsonSerializable(typeof(SubmitJobResponse))]
[JsonSerializable(typeof(SubmitBatchResponse))]
[JsonSerializable(typeof(JobView))]
[JsonSerializable(typeof(ResultsResponse))]
[JsonSerializable(typeof(AckRequest))]
[JsonSerializable(typeof(AckResponse))]
[JsonSerializable(typeof(RegisterWorkerRequest))]
[JsonSerializable(typeof(RegisterWorkerResponse))]
[JsonSerializable(typeof(HeartbeatRequest))]
[JsonSerializable(typeof(HeartbeatResponse))]
[JsonSerializable(typeof(LeaseRequest))]
[JsonSerializable(typeof(LeaseResponse))]
[JsonSerializable(typeof(JobReport))]
[JsonSerializable(typeof(ReportBatchRequest))]
[JsonSerializable(typeof(ReportBatchResponse))]
[JsonSerializable(typeof(HealthResponse))]
[JsonSerializable(typeof(LogBatchRequest))]
[JsonSerializable(typeof(LogBatchResponse))]
[JsonSerializable(typeof(JobLogsResponse))]
[JsonSerializable(typeof(Problem))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(List<string>))]
public sealed partial class DtsJsonContext : JsonSerializerContext;

public static class DtsJson
{
    /// <summary>The options every Dts component uses on the wire.</summary>
    public static JsonSerializerOptions Options => DtsJsonContext.Default.Options;
}
