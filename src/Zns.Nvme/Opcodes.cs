namespace Zns.Nvme;

/// <summary>Admin command opcodes.</summary>
public static class AdminOpcode
{
    public const byte GetLogPage = 0x02;
    public const byte Identify = 0x06;
    public const byte Abort = 0x08;
    public const byte SetFeatures = 0x09;
    public const byte GetFeatures = 0x0A;
    public const byte AsyncEventRequest = 0x0C;
    public const byte KeepAlive = 0x18;
    public const byte Fabrics = 0x7F;

    // Queue management of a memory-based (PCIe) controller; over Fabrics, Connect creates queues instead.
    public const byte DeleteIoSubmissionQueue = 0x00;
    public const byte CreateIoSubmissionQueue = 0x01;
    public const byte DeleteIoCompletionQueue = 0x04;
    public const byte CreateIoCompletionQueue = 0x05;
    public const byte DoorbellBufferConfig = 0x7C;
}

/// <summary>I/O command opcodes (NVM and Zoned Namespace command sets).</summary>
public static class IoOpcode
{
    public const byte Flush = 0x00;
    public const byte Write = 0x01;
    public const byte Read = 0x02;
    public const byte Compare = 0x05;
    public const byte WriteZeroes = 0x08;
    public const byte DatasetManagement = 0x09;
    public const byte Verify = 0x0C;
    public const byte Copy = 0x19;
    public const byte ZoneManagementSend = 0x79;
    public const byte ZoneManagementReceive = 0x7A;
    public const byte ZoneAppend = 0x7D;
}

/// <summary>Fabrics command types (FCTYPE).</summary>
public static class FabricsCommandType
{
    public const byte PropertySet = 0x00;
    public const byte Connect = 0x01;
    public const byte PropertyGet = 0x04;
    public const byte AuthenticationSend = 0x05;
    public const byte AuthenticationReceive = 0x06;
    public const byte Disconnect = 0x08;
}
