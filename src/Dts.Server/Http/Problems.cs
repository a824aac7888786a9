using System.Text.Json;
using Dts.Contracts;
using Dts.Core;
using Microsoft.AspNetCore.Http;

namespace Dts.Server.Http;

/// <summary>Writes RFC 9457 problem documents carrying Dts's stable error codes.</summary>
public static class Problems
{
    public const string ContentType = "application/problem+json";

    public static Task WriteAsync(HttpContext ctx, ErrorCode error, string? detail = null, string? field = null)
    {
        var problem = new Problem
        {
            Type = "https://dts.invalid/errors/" + error.Code,
            Title = error.Title,
            Status = error.Status,
            Detail = detail ?? error.Title,
            Instance = ctx.Request.Path,
            Code = error.Code,
            Field = field,
        };
        ctx.Response.StatusCode = error.Status;
        ctx.Response.ContentType = ContentType;
        return JsonSerializer.SerializeAsync(ctx.Response.Body, problem, DtsJsonContext.Default.Problem, ctx.RequestAborted);
    }

    public static Task WriteAsync(HttpContext ctx, DtsException ex) => WriteAsync(ctx, ex.Error, ex.Message, ex.Field);
}
