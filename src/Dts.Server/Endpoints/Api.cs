using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Dts.Contracts;
using Dts.Core;
using Dts.Server.Http;
using Microsoft.AspNetCore.Http;

namespace Dts.Server.Endpoints;

/// <summary>The frame of every signed endpoint: authenticate, check the role, run, and turn failures into problems.</summary>
internal static class Api
{
    public static RequestDelegate Signed(ServerContext s, string role, bool batch, Func<HttpContext, Caller, Task> handler)
    {
        var limit = batch ? s.Options.MaxBatchBodyBytes : s.Options.MaxBodyBytes;
        return async ctx =>
        {
            try
            {
                var caller = await s.Authenticator.AuthenticateAsync(ctx, limit, ctx.RequestAborted);
                if (!caller.User.HasRole(role))
                    throw new DtsException(ErrorCodes.Forbidden, $"This endpoint needs the '{role}' role; user '{caller.Name}' has {string.Join(", ", caller.User.Roles)}.");
                await handler(ctx, caller);
            }
            catch (DtsException ex) when (!ctx.Response.HasStarted)
            {
                await Problems.WriteAsync(ctx, ex);
            }
            catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
            {
                // The client went away; there is nobody to answer.
            }
        };
    }

    public static Task WriteAsync<T>(HttpContext ctx, int status, T value, JsonTypeInfo<T> typeInfo)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        return JsonSerializer.SerializeAsync(ctx.Response.Body, value, typeInfo, ctx.RequestAborted);
    }

    public static double QueryDouble(HttpContext ctx, string name, double fallback, double min, double max)
    {
        var raw = ctx.Request.Query[name];
        if (raw.Count == 0) return fallback;
        if (raw.Count > 1 || !double.TryParse(raw[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v) || v < min || v > max)
            throw new DtsException(ErrorCodes.InvalidQuery, $"'{name}' must be a number from {min} to {max}.", name);
        return v;
    }

    public static int QueryInt(HttpContext ctx, string name, int fallback, int min, int max)
    {
        var raw = ctx.Request.Query[name];
        if (raw.Count == 0) return fallback;
        if (raw.Count > 1 || !int.TryParse(raw[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < min || v > max)
            throw new DtsException(ErrorCodes.InvalidQuery, $"'{name}' must be a whole number from {min} to {max}.", name);
        return v;
    }

    public static long QueryLong(HttpContext ctx, string name, long fallback, long min, long max)
    {
        var raw = ctx.Request.Query[name];
        if (raw.Count == 0) return fallback;
        if (raw.Count > 1 || !long.TryParse(raw[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < min || v > max)
            throw new DtsException(ErrorCodes.InvalidQuery, $"'{name}' must be a whole number from {min} to {max}.", name);
        return v;
    }

    /// <summary>A job id from the route; a malformed id is simply a job that does not exist.</summary>
    public static string JobId(HttpContext ctx)
    {
        var id = ctx.Request.RouteValues["id"] as string;
        if (!JobIds.IsWellFormed(id)) throw new DtsException(ErrorCodes.JobNotFound, $"No job has the id '{id}'.");
        return id!;
    }
}
