using Zns.Nvme;

namespace Zns.Protocol;

/// <summary>NVMe/TCP PDU types (common header byte 0).</summary>
public enum PduType : byte
{
    /// <summary>Initialize Connection Request, host to controller.</summary>
    ICReq = 0x00,
    /// <summary>Initialize Connection Response, controller to host.</summary>
    ICResp = 0x01,
    /// <summary>Host-to-controller Terminate Connection Request.</summary>
    H2CTermReq = 0x02,
    /// <summary>Controller-to-host Terminate Connection Request.</summary>
    C2HTermReq = 0x03,
    /// <summary>Command capsule (SQE and optional in-capsule data), host to controller.</summary>
    CapsuleCmd = 0x04,
    /// <summary>Response capsule (CQE), controller to host.</summary>
    CapsuleResp = 0x05,
    /// <summary>Host-to-controller data, sent only in answer to an R2T.</summary>
    H2CData = 0x06,
    /// <summary>Controller-to-host data (read data).</summary>
    C2HData = 0x07,
    /// <summary>Ready to Transfer: the controller solicits write data.</summary>
    R2T = 0x09,
}

/// <summary>Common header FLAGS bits.</summary>
[Flags]
public enum PduFlags : byte
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary>HDGSTF: a header digest follows the header.</summary>
    HeaderDigest = 0x01,
    /// <summary>DDGSTF: a data digest follows the data.</summary>
    DataDigest = 0x02,
    /// <summary>LAST_PDU: last data PDU of a transfer (H2CData, C2HData).</summary>
    LastPdu = 0x04,
    /// <summary>SUCCESS: command completed, no CapsuleResp follows (C2HData only; this implementation never sends it).</summary>
    Success = 0x08,
}

/// <summary>Digests negotiated in ICReq/ICResp (the DGST byte, offset 11).</summary>
[Flags]
public enum DigestOptions : byte
{
    /// <summary>No digests.</summary>
    None = 0,
    /// <summary>HDGST_ENABLE: CRC32C over every PDU header except ICReq, ICResp and TermReq.</summary>
    Header = 0x01,
    /// <summary>DDGST_ENABLE: CRC32C over the data of every PDU that carries data.</summary>
    Data = 0x02,
}

/// <summary>Fatal Error Status carried by H2CTermReq / C2HTermReq.</summary>
public enum FatalErrorStatus : ushort
{
    /// <summary>Not an error (placeholder).</summary>
    None = 0x00,
    /// <summary>Invalid PDU header field; FEI holds the byte offset of the field.</summary>
    InvalidHeaderField = 0x01,
    /// <summary>PDU sequence error (a PDU that is not allowed in the current connection state).</summary>
    PduSequenceError = 0x02,
    /// <summary>Header digest error.</summary>
    HeaderDigestError = 0x03,
    /// <summary>Data transfer out of range (data offset/length outside the solicited or command range).</summary>
    DataTransferOutOfRange = 0x04,
    /// <summary>Data transfer limit exceeded (PDU data above MAXH2CDATA or the in-capsule limit; was "R2T limit exceeded").</summary>
    DataTransferLimitExceeded = 0x05,
    /// <summary>Unsupported parameter; FEI holds the byte offset of the parameter.</summary>
    UnsupportedParameter = 0x06,
}

/// <summary>Which side produced the PDUs being parsed.</summary>
public enum PduDirection : byte
{
    /// <summary>PDUs sent by a host (parsed by a controller): ICReq, H2CTermReq, CapsuleCmd, H2CData.</summary>
    HostToController,
    /// <summary>PDUs sent by a controller (parsed by a host): ICResp, C2HTermReq, CapsuleResp, C2HData, R2T.</summary>
    ControllerToHost,
}
