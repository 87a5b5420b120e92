using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace TunnelRouter.Host;

/// <summary>Where watch serves its metrics: a TCP address and port, or a unix socket's path.</summary>
public sealed record MetricsEndpoint(EndPoint EndPoint, string Display)
{
    public string? SocketPath => EndPoint is UnixDomainSocketEndPoint ? Display["unix:".Length..] : null;

    /// <summary>
    /// <c>127.0.0.1:9477</c>, <c>[::1]:9477</c>, <c>localhost:9477</c> or <c>unix:/run/tunnel-router/metrics.sock</c>. An
    /// address that is not loopback is refused unless <paramref name="remote"/> (<c>--metrics-remote</c>): the metrics name
    /// the tables, the owned routes per table and the kill switches of this gateway, and the listener has no TLS nor
    /// authentication (put a reverse proxy in front for that).
    /// </summary>
    public static MetricsEndpoint Parse(string value, bool remote)
    {
        const string Field = "--metrics";
        var shown = Core.Net.Printable(value);
        if (value.StartsWith("unix:", StringComparison.Ordinal))
        {
            var path = value["unix:".Length..];
            if (!path.StartsWith('/') || path.Length > 107 || path.Contains('\0'))
                throw new InputException(Field, $"'{shown}': a unix socket needs an absolute path of at most 107 bytes");
            return new MetricsEndpoint(new UnixDomainSocketEndPoint(path), value);
        }
        var colon = value.LastIndexOf(':');
        if (colon <= 0 || !ushort.TryParse(value[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port == 0)
            throw new InputException(Field, $"'{shown}' is not ADDRESS:PORT (127.0.0.1:9477, [::1]:9477) nor unix:PATH");
        var host = value[..colon];
        IPAddress address;
        if (host == "localhost") address = IPAddress.Loopback;
        else if (!IPAddress.TryParse(host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host, out address!)
                 || host.Contains(':') && !host.StartsWith('['))
            throw new InputException(Field, $"'{shown}': '{Core.Net.Printable(host)}' is not an IP address (an IPv6 one in brackets: [::1]:9477)");
        if (!IPAddress.IsLoopback(address) && !remote)
            throw new InputException(Field, $"'{shown}' is not a loopback address: the metrics name this gateway's tables and kill switches, " +
                                            "and the listener has no authentication; add --metrics-remote to serve them beyond this host");
        return new MetricsEndpoint(new IPEndPoint(address, port), value);
    }
}

/// <summary>
/// A minimal HTTP/1.1 responder for <c>GET /metrics</c> (no ASP.NET: a socket and a thread, native-AOT friendly). One
/// connection at a time, a backlog of <see cref="Backlog"/>; a request is read up to <see cref="MaxRequestBytes"/> and
/// <see cref="IoTimeout"/>, answered and closed (<c>Connection: close</c>). It runs on its own thread and renders with
/// its own kernel socket: a slow or hostile client never holds the watch loop, only other scrapes.
/// </summary>
public sealed class MetricsListener : IDisposable
{
    public const int MaxRequestBytes = 8192;
    public const int Backlog = 4;
    public static readonly TimeSpan IoTimeout = TimeSpan.FromSeconds(5);

    readonly Socket _socket;
    readonly Func<string> _render;
    readonly Action<string> _warn;
    readonly MetricsEndpoint _endpoint;
    readonly Thread _thread;
    volatile bool _stopping;

    /// <summary>Binds now (an address in use is one line naming it); serves from a background thread.</summary>
    public MetricsListener(MetricsEndpoint endpoint, Func<string> render, Action<string> warn)
    {
        _endpoint = endpoint;
        _render = render;
        _warn = warn;
        _socket = endpoint.EndPoint is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(endpoint.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (endpoint.SocketPath is { } path) RemoveStale(path);
            _socket.Bind(endpoint.EndPoint);
            if (endpoint.SocketPath is { } bound) File.SetUnixFileMode(bound, (UnixFileMode)0b110_110_000);
            _socket.Listen(Backlog);
        }
        catch (SocketException e)
        {
            _socket.Dispose();
            throw new EnvironmentException($"--metrics: cannot listen on {endpoint.Display}: {e.SocketErrorCode switch
            {
                SocketError.AddressAlreadyInUse => "the address is in use",
                SocketError.AddressNotAvailable => "no interface of this host has that address",
                SocketError.AccessDenied => "permission denied",
                _ => e.SocketErrorCode.ToString(),
            }}");
        }
        _thread = new Thread(Serve) { IsBackground = true, Name = "metrics" };
        _thread.Start();
    }

    /// <summary>A socket file left by a watch that died: removed, unless something still answers on it.</summary>
    static void RemoveStale(string path)
    {
        if (Directory.Exists(path)) throw new EnvironmentException($"--metrics: {path} is a directory");
        if (!File.Exists(path)) return;
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
            throw new EnvironmentException($"--metrics: something already listens on {path}");
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused)
        {
            File.Delete(path);
        }
        catch (SocketException)
        {
            throw new EnvironmentException($"--metrics: {path} exists and is not a socket left by a watch; remove it or name another path");
        }
    }

    void Serve()
    {
        while (!_stopping)
        {
            Socket client;
            try
            {
                // Polled, so that Dispose ends the thread within half a second whatever the runtime does to a blocked accept.
                if (!_socket.Poll(500_000, SelectMode.SelectRead)) continue;
                client = _socket.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                if (_stopping) return;
                continue;
            }
            using (client)
            {
                try { Answer(client); }
                catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException) { }
            }
        }
    }

    void Answer(Socket client)
    {
        client.ReceiveTimeout = client.SendTimeout = (int)IoTimeout.TotalMilliseconds;
        var buffer = new byte[MaxRequestBytes];
        var length = 0;
        int end;
        while ((end = HeaderEnd(buffer, length)) < 0)
        {
            if (length == buffer.Length)
            {
                Send(client, "431 Request Header Fields Too Large", $"the request is larger than {MaxRequestBytes} bytes\n");
                return;
            }
            var n = client.Receive(buffer, length, buffer.Length - length, SocketFlags.None);
            if (n == 0) return;
            length += n;
        }
        var line = Encoding.ASCII.GetString(buffer, 0, Math.Max(0, Array.IndexOf(buffer, (byte)'\r', 0, end))).Split(' ');
        if (line.Length != 3 || !line[2].StartsWith("HTTP/1.", StringComparison.Ordinal))
        {
            Send(client, "400 Bad Request", "not an HTTP/1.x request line\n");
            return;
        }
        var head = line[0] == "HEAD";
        if (line[0] != "GET" && !head)
        {
            Send(client, "405 Method Not Allowed", "GET /metrics\n", extra: "Allow: GET, HEAD\r\n");
            return;
        }
        var target = line[1].Split('?')[0];
        if (target == "/")
        {
            Send(client, "200 OK", "tunnel-router watch: the metrics are at /metrics\n", head: head);
            return;
        }
        if (target != "/metrics")
        {
            Send(client, "404 Not Found", "the metrics are at /metrics\n", head: head);
            return;
        }
        string body;
        try { body = _render(); }
        catch (Exception e) when (e is TunnelRouterException or IOException or UnauthorizedAccessException or SocketException)
        {
            _warn($"tunnel-router: warning: a metrics scrape on {_endpoint.Display} failed: {e.Message}");
            Send(client, "500 Internal Server Error", e.Message + "\n", head: head);
            return;
        }
        Send(client, "200 OK", body, "text/plain; version=0.0.4; charset=utf-8", head: head);
    }

    /// <summary>Where the header ends (after the empty line), or -1.</summary>
    static int HeaderEnd(byte[] b, int length)
    {
        for (var i = 3; i < length; i++)
            if (b[i] == '\n' && b[i - 1] == '\r' && b[i - 2] == '\n' && b[i - 3] == '\r') return i + 1;
        return -1;
    }

    static void Send(Socket client, string status, string body, string type = "text/plain; charset=utf-8", string extra = "", bool head = false)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var header = Encoding.ASCII.GetBytes(
            $"HTTP/1.1 {status}\r\nContent-Type: {type}\r\nContent-Length: {bytes.Length.ToString(CultureInfo.InvariantCulture)}\r\n{extra}Connection: close\r\n\r\n");
        client.Send(header);
        if (!head) client.Send(bytes);
        client.Shutdown(SocketShutdown.Send);
        // A refused request may leave bytes unread; closing over them resets the connection before the client has read
        // the answer. What is left is read and dropped first, as a web server's lingering close does: bounded, 64 KiB and 1 s.
        if (!status.StartsWith("200", StringComparison.Ordinal)) Drain(client);
    }

    static void Drain(Socket client)
    {
        client.ReceiveTimeout = 1000;
        var sink = new byte[8192];
        var left = 64 * 1024;
        try
        {
            int n;
            while (left > 0 && (n = client.Receive(sink)) > 0) left -= n;
        }
        catch (SocketException) { }
    }

    public void Dispose()
    {
        _stopping = true;
        try { _socket.Shutdown(SocketShutdown.Both); }
        catch (SocketException) { }
        _socket.Dispose();
        _thread.Join(IoTimeout * 2);
        if (_endpoint.SocketPath is { } path)
            try { File.Delete(path); }
            catch (IOException) { }
    }
}
