import struct

from podnet.datapath import rtnl
from podnet.datapath.backend import attachment_mac, host_veth_name


def test_attributes_are_padded_and_parse_back() -> None:
    packed = rtnl.attr(rtnl.IFLA_IFNAME, rtnl.cstr("eth0")) + rtnl.attr(rtnl.IFLA_MTU, rtnl.u32(1400))
    assert len(packed) % 4 == 0
    assert list(rtnl._parse_attrs(packed)) == [(rtnl.IFLA_IFNAME, b"eth0\0"), (rtnl.IFLA_MTU, struct.pack("=I", 1400))]


def test_message_headers_have_kernel_sizes() -> None:
    assert len(rtnl.ifinfo()) == 16
    assert rtnl._IFADDR.size == 8 and rtnl._RTMSG.size == 12 and rtnl._HDR.size == 16
    assert rtnl.mac_bytes("0a:00:00:00:00:02") == b"\x0a\0\0\0\0\x02"


def test_extended_ack_message_is_reported() -> None:
    capped_request = rtnl._HDR.pack(32, rtnl.RTM_NEWADDR, 5, 9, 0)
    ext = rtnl.attr(rtnl.NLMSGERR_ATTR_MSG, b"IPv6 is disabled on this device\0")
    payload = struct.pack("=i", -13) + capped_request + ext
    text = rtnl.Rtnl._error_text(13, rtnl.NLM_F_CAPPED | rtnl.NLM_F_ACK_TLVS, payload)
    assert text == "Permission denied (IPv6 is disabled on this device)"


def test_names_and_macs_are_stable_and_tagged() -> None:
    name = host_veth_name("abc", "eth0")
    assert name.startswith("pn") and len(name) == 13 and name == host_veth_name("abc", "eth0")
    assert name != host_veth_name("abc", "eth1")
    mac = attachment_mac("abc", "eth0", "pod")
    first = int(mac[:2], 16)
    assert first & 0x02 and not first & 0x01  # locally administered, unicast
    assert mac != attachment_mac("abc", "eth0", "host")


def test_echoed_link_gives_its_index_and_its_peers() -> None:
    payload = rtnl.ifinfo(7) + rtnl.attr(rtnl.IFLA_IFNAME, rtnl.cstr("pn0")) + rtnl.attr(rtnl.IFLA_LINK, rtnl.u32(2))
    assert rtnl.echoed_indexes(payload) == (7, 2)
    assert rtnl.echoed_indexes(rtnl.ifinfo(7)) == (7, None)


def test_set_link_message_can_pin_the_name() -> None:
    kind, flags, body = rtnl.set_link_msg(5, up=True, alias="podnet:c:eth0", name="eth0")
    assert (kind, flags) == (rtnl.RTM_NEWLINK, 0)
    assert dict(rtnl._parse_attrs(body[16:])) == {rtnl.IFLA_IFALIAS: b"podnet:c:eth0\0", rtnl.IFLA_IFNAME: b"eth0\0"}
