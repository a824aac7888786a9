using System.Text;
using BenchmarkDotNet.Attributes;
using Dts.Contracts;

namespace Dts.Benchmarks;

/// <summary>What every request costs for authentication: hashing the body, signing (client) and verifying (server).</summary>
[MemoryDiagnoser]
public class SigningBenchmarks
{
    private string _secret = "";
    private string _canonical = "";
    private string _signature = "";
    private byte[] _body = [];

    [Params(0, 64 * 1024)]
    public int BodyBytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _secret = RequestSigning.NewSecret();
        _body = Encoding.UTF8.GetBytes(new string('j', BodyBytes));
        _canonical = RequestSigning.CanonicalRequest("POST", "/v1/jobs/batch", "wait=0", "bench-client", "2026-01-01T00:00:00Z",
            RequestSigning.NewNonce(), RequestSigning.BodyHash(_body));
        _signature = RequestSigning.Sign(_secret, _canonical);
    }

    [Benchmark]
    public string HashBody() => RequestSigning.BodyHash(_body);

    [Benchmark]
    public string Sign() => RequestSigning.Sign(_secret, RequestSigning.CanonicalRequest("POST", "/v1/jobs/batch", "wait=0",
        "bench-client", "2026-01-01T00:00:00Z", RequestSigning.NewNonce(), RequestSigning.BodyHash(_body)));

    [Benchmark]
    public bool Verify() => RequestSigning.Verify(_secret, _canonical, _signature);
}
