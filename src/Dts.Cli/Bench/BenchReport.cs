namespace Dts.Cli.Commands;

/// <summary>Every figure of one <c>dts bench</c> run; null where a phase did not run or a figure cannot be known.</summary>
internal sealed class BenchReport
{
    public DateTimeOffset Date { get; set; }
    public string Machine { get; set; } = "";
    public string Mode { get; set; } = "";
    public string Store { get; set; } = "";
    public string ServerMeasuredBy { get; set; } = "";
    public string Phases { get; set; } = "";
    public int Jobs { get; set; }
    public int Workers { get; set; }
    public int Clients { get; set; }
    public int Batch { get; set; }
    public int PayloadBytes { get; set; }
    public long Queued { get; set; }
    public double WarmupSeconds { get; set; }

    public double? EndToEndJobsPerSecond { get; set; }
    public double? EndToEndSeconds { get; set; }
    public double? EndToEndServerCpuSecondsPer1000Jobs { get; set; }

    public double? SubmitJobsPerSecond { get; set; }
    public double? SubmitSeconds { get; set; }
    public double? SubmitServerCpuSecondsPer1000Jobs { get; set; }

    public double? QueuedFillJobsPerSecond { get; set; }
    public double? QueuedFillSeconds { get; set; }
    public double? MemoryAfterFillMb { get; set; }

    public double? DrainJobsPerSecond { get; set; }
    public double? DrainSeconds { get; set; }
    public double? DrainServerCpuSecondsPer1000Jobs { get; set; }

    public int? LatencySamples { get; set; }
    public double? LatencyP50Us { get; set; }
    public double? LatencyP90Us { get; set; }
    public double? LatencyP99Us { get; set; }
    public double? LatencyMaxUs { get; set; }
    public double? LatencyServerCpuSecondsPer1000Jobs { get; set; }

    /// <summary>The data directory's disk: a 4 KB write made durable with fsync, timed right after the latency phase.</summary>
    public int? DiskFlushSamples { get; set; }
    public double? DiskFlushP50Us { get; set; }
    public double? DiskFlushP99Us { get; set; }
    public double? DiskFlushMaxUs { get; set; }

    /// <summary>The server's CPU per 1000 jobs in the end-to-end phase (the headline CPU figure).</summary>
    public double? CpuSecondsPer1000Jobs { get; set; }
    public double? ServerCpuSecondsTotal { get; set; }
    public double? PeakMemoryMb { get; set; }
    public double? MemoryAtEndMb { get; set; }
    public string Note { get; set; } = "";
}
