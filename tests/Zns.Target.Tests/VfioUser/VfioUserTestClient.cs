using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Zns.Target.Tests.Pcie;
using Zns.Target.VfioUser;

using Zns.Core.Interop;

namespace Zns.Target.Tests.VfioUser;

/// <summary>A vfio-user client for tests: what QEMU's vfio-user-pci sends, over a real Unix socket with SCM_RIGHTS.</summary>
internal sealed unsafe class VfioUserTestClient : IFunctionAccess, IDisposable
{
    private readonly Socket _socket;
    private ushort _id;

    public VfioUserTestClient(string path)
    {
        _socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _socket.Connect(new UnixDomainSocketEndPoint(path));
    }

    public Socket Socket => _socket;

    public readonly record struct Reply(VfioUserHeader Header, byte[] Payload)
    {
        public bool IsError => (Header.Flags & VfioUserHeader.ErrorFlag) != 0;
        public int Errno => (int)Header.Error;
    }

    /// <summary>Sends a raw message (header built here unless <paramref name="raw"/> is given) with descriptors.</summary>
    public void SendRaw(ReadOnlySpan<byte> message, ReadOnlySpan<int> fds = default)
    {
        int controlLength = fds.Length == 0 ? 0 : Posix.CmsgSpace(fds.Length * 4);
        byte* control = stackalloc byte[Math.Max(controlLength, 1)];
        if (fds.Length > 0)
        {
            new Span<byte>(control, controlLength).Clear();
            *(ulong*)control = (ulong)(Posix.CmsgHeaderSize + fds.Length * 4);
            *(int*)(control + 8) = Posix.SolSocket;
            *(int*)(control + 12) = Posix.ScmRights;
            for (int i = 0; i < fds.Length; i++)
            {
                ((int*)(control + Posix.CmsgHeaderSize))[i] = fds[i];
            }
        }
        fixed (byte* b = message)
        {
            var iov = new Posix.IoVec { Base = b, Length = (nuint)message.Length };
            var msg = new Posix.MsgHdr { Iov = &iov, IovLength = 1, Control = fds.Length > 0 ? control : null, ControlLength = (nuint)controlLength };
            nint n = Posix.sendmsg((int)_socket.SafeHandle.DangerousGetHandle(), &msg, Posix.MsgNoSignal);
            Assert.Equal(message.Length, (int)n);
        }
    }

    public Reply ReceiveReply()
    {
        byte[] header = new byte[VfioUserHeader.Size];
        ReceiveExactly(header);
        VfioUserHeader h = VfioUserHeader.Read(header);
        byte[] payload = new byte[h.MessageSize - VfioUserHeader.Size];
        ReceiveExactly(payload);
        return new Reply(h, payload);
    }

    private void ReceiveExactly(byte[] buffer)
    {
        int got = 0;
        while (got < buffer.Length)
        {
            int n = _socket.Receive(buffer, got, buffer.Length - got, SocketFlags.None);
            if (n == 0)
            {
                throw new IOException("server closed the connection");
            }
            got += n;
        }
    }

    public Reply Call(ushort command, ReadOnlySpan<byte> payload, ReadOnlySpan<int> fds = default, bool noReply = false)
    {
        byte[] message = new byte[VfioUserHeader.Size + payload.Length];
        ushort id = ++_id;
        new VfioUserHeader(id, command, (uint)message.Length, noReply ? VfioUserHeader.NoReplyFlag : 0, 0).Write(message);
        payload.CopyTo(message.AsSpan(VfioUserHeader.Size));
        SendRaw(message, fds);
        if (noReply)
        {
            return default;
        }
        Reply reply = ReceiveReply();
        Assert.Equal(id, reply.Header.MessageId);
        Assert.Equal(command, reply.Header.Command);
        Assert.Equal(VfioUserHeader.TypeReply, reply.Header.Flags & VfioUserHeader.TypeMask);
        return reply;
    }

    public Reply Version(string? json = "{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":1048576}}")
    {
        byte[] p = new byte[4 + (json is null ? 0 : json.Length + 1)];
        if (json is not null)
        {
            System.Text.Encoding.UTF8.GetBytes(json, p.AsSpan(4));
        }
        return Call(VfioUserCommand.Version, p);
    }

    public Reply DmaMap(ulong address, ulong size, int fd, long offset = 0, uint flags = 3)
    {
        byte[] p = new byte[32];
        BinaryPrimitives.WriteUInt32LittleEndian(p, 32);
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(4), flags);
        BinaryPrimitives.WriteInt64LittleEndian(p.AsSpan(8), offset);
        BinaryPrimitives.WriteUInt64LittleEndian(p.AsSpan(16), address);
        BinaryPrimitives.WriteUInt64LittleEndian(p.AsSpan(24), size);
        return fd >= 0 ? Call(VfioUserCommand.DmaMap, p, [fd]) : Call(VfioUserCommand.DmaMap, p);
    }

    public Reply DmaUnmap(ulong address, ulong size, uint flags = 0)
    {
        byte[] p = new byte[24];
        BinaryPrimitives.WriteUInt32LittleEndian(p, 24);
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt64LittleEndian(p.AsSpan(8), address);
        BinaryPrimitives.WriteUInt64LittleEndian(p.AsSpan(16), size);
        return Call(VfioUserCommand.DmaUnmap, p);
    }

    public Reply SetIrqs(uint index, uint flags, uint start, uint count, ReadOnlySpan<int> fds = default)
    {
        byte[] p = new byte[20];
        BinaryPrimitives.WriteUInt32LittleEndian(p, 20);
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(8), index);
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(12), start);
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(16), count);
        return Call(VfioUserCommand.DeviceSetIrqs, p, fds);
    }

    public Reply RegionRead(uint region, ulong offset, uint count)
    {
        byte[] p = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(p, offset);
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(8), region);
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(12), count);
        return Call(VfioUserCommand.RegionRead, p);
    }

    public Reply RegionWrite(uint region, ulong offset, ReadOnlySpan<byte> data, bool noReply = false)
    {
        byte[] p = new byte[16 + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(p, offset);
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(8), region);
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(12), (uint)data.Length);
        data.CopyTo(p.AsSpan(16));
        return Call(VfioUserCommand.RegionWrite, p, noReply: noReply);
    }

    private byte[] ReadOk(uint region, long offset, int count)
    {
        Reply r = RegionRead(region, (ulong)offset, (uint)count);
        Assert.False(r.IsError, $"region {region} read at {offset:x}: errno {r.Errno}");
        return r.Payload[16..];
    }

    private void WriteOk(uint region, long offset, ReadOnlySpan<byte> data)
    {
        Reply r = RegionWrite(region, (ulong)offset, data);
        Assert.False(r.IsError, $"region {region} write at {offset:x}: errno {r.Errno}");
    }

    public uint Read32(long offset) => BinaryPrimitives.ReadUInt32LittleEndian(ReadOk(0, offset, 4));
    public ulong Read64(long offset) => BinaryPrimitives.ReadUInt64LittleEndian(ReadOk(0, offset, 8));

    public void Write32(long offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        WriteOk(0, offset, b);
    }

    public void Write64(long offset, ulong value)
    {
        // QEMU splits 64-bit register writes into two dwords, low first.
        Write32(offset, (uint)value);
        Write32(offset + 4, (uint)(value >> 32));
    }

    public byte[] ReadConfig(long offset, int count) => ReadOk(VfioUserSession.ConfigRegion, offset, count);
    public void WriteConfig(long offset, ReadOnlySpan<byte> data) => WriteOk(VfioUserSession.ConfigRegion, offset, data);

    public void Dispose() => _socket.Dispose();
}

/// <summary>An eventfd the test reads to count interrupts.</summary>
internal sealed unsafe class TestEventFd : IDisposable
{
    public TestEventFd()
    {
        Fd = Posix.eventfd(0, 0x800 /* EFD_NONBLOCK */);
        Assert.True(Fd >= 0);
    }

    public int Fd { get; }

    /// <summary>Reads and resets the counter (0 when nothing was signalled).</summary>
    public ulong Take()
    {
        ulong v = 0;
        return Posix.read(Fd, &v, 8) == 8 ? v : 0;
    }

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for a signal and takes it: the controller writes a completion entry
    /// before it signals the vector, so a driver that polled the entry can look before the signal is there.
    /// </summary>
    public ulong TakeWithin(TimeSpan timeout)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        ulong v;
        while ((v = Take()) == 0 && Environment.TickCount64 < deadline)
        {
            Thread.Sleep(1);
        }
        return v;
    }

    public void Dispose() => Posix.close(Fd);
}
