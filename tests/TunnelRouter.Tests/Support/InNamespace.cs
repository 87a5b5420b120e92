using System.Runtime.InteropServices;

namespace TunnelRouter.Tests.Support;

/// <summary>
/// Runs code of this test process inside a test namespace: on a thread of its own that setns(2)-es into
/// the namespace (a network namespace is per thread), so an IKernel can be tested in-process. Sockets
/// opened and processes started on that thread live in the namespace; the thread ends with the call.
/// </summary>
public static class InNamespace
{
    const int CLONE_NEWNET = 0x40000000;

    public static T Inside<T>(this NetNs ns, Func<T> work)
    {
        T result = default!;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                using (var handle = File.OpenHandle($"/run/netns/{ns.Name}"))
                    if (setns((int)handle.DangerousGetHandle(), CLONE_NEWNET) != 0)
                        throw new InvalidOperationException($"setns into {ns.Name} failed: errno {Marshal.GetLastPInvokeError()}");
                result = work();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
        return result;
    }

    public static void Inside(this NetNs ns, Action work) => ns.Inside(() => { work(); return 0; });

    [DllImport("libc", SetLastError = true)]
    static extern int setns(int fd, int nstype);
}
