"""The calculator tool evaluates arithmetic and nothing else."""

import pytest

from agentstead.agents.calculator import CalculatorError, evaluate
from agentstead.agents.netguard import public_address


@pytest.mark.parametrize("expr,value", [("6 * 7", 42), ("(2 + 3) ** 2", 25), ("7 // 2", 3), ("-3 + 1", -2),
                                        ("sqrt(16)", 4.0), ("max(1, 5, 3)", 5), ("round(pi, 2)", 3.14)])
def test_arithmetic(expr, value):
    assert evaluate(expr) == value


@pytest.mark.parametrize("expr,fragment", [
    ("__import__('os').system('id')", "not allowed"), ("open('/etc/passwd')", "not allowed"),
    ("(1).__class__", "not allowed"), ("2 ** 100000", "exponent"), ("1 / 0", "cannot compute"),
    ("x + 1", "not allowed"), ("", "give an arithmetic"), ("1 +", "not an arithmetic"),
    ("9" * 600, "longer than"), ("[1, 2]", "not allowed"), ("lambda: 1", "not allowed"),
])
def test_everything_else_is_refused(expr, fragment):
    with pytest.raises(CalculatorError, match=fragment):
        evaluate(expr)


@pytest.mark.parametrize("address,public", [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True), ("127.0.0.1", False), ("10.1.2.3", False),
    ("192.168.0.1", False), ("172.16.5.4", False), ("169.254.169.254", False), ("::1", False),
    ("fe80::1", False), ("::ffff:127.0.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False), ("fc00::1", False),
    ("100.64.0.1", False), ("not-an-ip", False),
    # IPv4 inside IPv6: 6to4, NAT64, IPv4-compatible, Teredo (whose client part is inverted)
    ("2002:7f00:1::1", False), ("64:ff9b::7f00:1", False), ("::127.0.0.1", False),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),
])
def test_only_public_addresses_are_reachable(address, public):
    assert public_address(address) is public
