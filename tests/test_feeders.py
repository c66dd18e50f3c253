from __future__ import annotations

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from feederflex import feeders


def test_case33bw_base_case_reproduced_by_our_ac_check(feeder33):
    net = feeders.to_pandapower(feeder33)
    feeders.run_ac(net)
    assert net.res_line.pl_mw.sum() * 1000 == pytest.approx(202.7, abs=0.05)
    vm = net.res_bus.vm_pu.to_numpy()
    assert vm.min() == pytest.approx(0.9131, abs=5e-5)
    assert int(net.bus.name[net.res_bus.vm_pu.idxmin()]) == 18


def test_feeder_is_radial_and_ordered_from_the_substation(feeder33):
    assert (feeder33.sizes["bus"], feeder33.sizes["branch"], feeder33.sizes["gen"]) == (33, 32, 0)
    assert feeder33.attrs["root_bus"] == 1
    reached = {1}
    for br in feeder33.branch.values:
        parent, child = int(feeder33.from_bus.sel(branch=br)), int(feeder33.to_bus.sel(branch=br))
        assert parent in reached, "a branch's parent is reached before the branch"
        assert child not in reached
        reached.add(child)
    assert reached == set(feeder33.bus.values.tolist())


def test_per_unit_impedances_use_a_1_mva_base(feeder33):
    z_base = 12.66**2 / 1.0
    np.testing.assert_allclose(feeder33.r_pu.values * z_base, feeder33.r_ohm.values)
    first = feeder33.sel(branch=1)
    assert (int(first.from_bus), int(first.to_bus)) == (1, 2)
    assert float(first.r_ohm) == pytest.approx(0.0922, abs=1e-4)
    assert float(feeder33.p_load_mw.sum()) == pytest.approx(3.715)
    assert float(feeder33.q_load_mvar.sum()) == pytest.approx(2.3)


def test_meshed_network_is_a_clear_error(tmp_path):
    net = pn.case33bw()
    net.line["in_service"] = True  # close the five tie lines
    path = tmp_path / "meshed.json"
    pp.to_json(net, str(path))
    with pytest.raises(feeders.FeederError, match=r"meshed: line \d+ .* closes a loop"):
        feeders.build_feeder(str(path))


def test_disconnected_network_is_a_clear_error():
    net = pn.case33bw()
    net.line.loc[5, "in_service"] = False
    with pytest.raises(feeders.FeederError, match="disconnected"):
        feeders.feeder_from_pandapower(net, "cut")


def test_json_network_is_accepted_and_equals_the_builtin(tmp_path, feeder33):
    path = tmp_path / "net.json"
    pp.to_json(pn.case33bw(), str(path))
    fd = feeders.build_feeder(str(path))
    np.testing.assert_allclose(fd.r_pu.values, feeder33.r_pu.values)
    assert feeders.bus_numbers(str(path)) == list(range(1, 34))


def test_unknown_source_names_the_key():
    with pytest.raises(feeders.FeederError, match="network.source: 'nowhere.json'"):
        feeders.build_feeder("nowhere.json")


def test_three_joined_feeders_have_three_times_the_losses_and_the_same_voltages():
    feeder = feeders.build_feeder("case33bw_x3")
    assert feeder.sizes["bus"] == 97 and feeder.sizes["branch"] == 96
    assert feeders.bus_numbers("case33bw_x3") == list(range(1, 98))
    net = feeders.to_pandapower(feeder)
    feeders.run_ac(net)
    assert net.res_line.pl_mw.sum() * 1000 == pytest.approx(3 * 202.68, abs=0.5)
    vm = net.res_bus.vm_pu.values
    np.testing.assert_allclose(vm[[17, 49, 81]], 0.91309, atol=1e-4)  # bus 18 of each feeder


def test_case69_base_case_reproduced_by_our_ac_check():
    fd = feeders.build_feeder("case69")
    assert (fd.sizes["bus"], fd.sizes["branch"]) == (69, 68) and fd.attrs["root_bus"] == 1
    assert float(fd.p_load_mw.sum()) == pytest.approx(3.8021) and float(fd.q_load_mvar.sum()) == pytest.approx(2.6947)
    assert float(fd.p_load_mw.sel(bus=61)) == pytest.approx(1.244)  # the paper's numbering: the big load at 61
    net = feeders.to_pandapower(fd)
    feeders.run_ac(net)
    assert net.res_line.pl_mw.sum() * 1000 == pytest.approx(225.0, abs=0.05)
    assert net.res_bus.vm_pu.min() == pytest.approx(0.9092, abs=5e-5)
    assert int(net.bus.name[net.res_bus.vm_pu.idxmin()]) == 65
    assert feeders.bus_numbers("case69") == list(range(1, 70))
