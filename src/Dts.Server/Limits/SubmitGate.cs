using System.Globalization;
using Dts.Core;
using Dts.Core.Storage;
using Microsoft.AspNetCore.Http;

namespace Dts.Server.Limits;

/// <summary>The HTTP side of the submit limits: a refusal becomes a 429 problem with a Retry-After header.</summary>
internal static class SubmitGate
{
    public static async Task CheckAsync(ServerContext s, HttpContext ctx, UserRecord user, int count)
    {
        // Users without limits, most of them, cost nothing here.
        if (user.MaxQueued is null && user.SubmitRate is null) return;
        try
        {
            await s.Limiter.CheckAsync(user, count, ctx.RequestAborted);
        }
        catch (LimitExceededException ex)
        {
            ctx.Response.Headers.RetryAfter = ex.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
            throw new DtsException(ex.Error, ex.Message);
        }
    }
}
