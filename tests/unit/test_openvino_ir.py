"""OpenVINO IR names: the layers OpenVINO numbers from its process-wide node counter are renumbered by first
appearance, so two exports whose calibration created a different number of nodes give the same bytes."""

from __future__ import annotations

from exportctl.formats.openvino import canonical_layer_names

IR = """<?xml version="1.0"?>
<net name="Model0" version="11">
\t<layers>
\t\t<layer id="0" name="x.1" type="Parameter" version="opset1">
\t\t\t<output><port id="0" precision="FP32" names="x.1" /></output>
\t\t</layer>
\t\t<layer id="1" name="Constant_{a}" type="Const" version="opset1" />
\t\t<layer id="2" name="Convert_{b}" type="Convert" version="opset1" />
\t\t<layer id="3" name="__module.model.0.conv/aten::_convolution/Convolution" type="Convolution" version="opset1">
\t\t\t<output><port id="2" precision="FP32" names="51_1" /></output>
\t\t</layer>
\t\t<layer id="4" name="Constant_{c}" type="Const" version="opset1" />
\t\t<layer id="5" name="Result_{d}" type="Result" version="opset1" />
\t</layers>
\t<rt_info><info name="OpenVINO Runtime" value="2026.4.1" /></rt_info>
</net>
"""


def test_a_shifted_node_counter_gives_the_same_ir() -> None:
    first = IR.format(a=243849, b=243850, c=1304, d=2688)
    second = IR.format(a=243850, b=243851, c=1304, d=2688)
    assert first != second
    assert canonical_layer_names(first) == canonical_layer_names(second)


def test_only_counted_layer_names_change_and_stay_distinct() -> None:
    canonical = canonical_layer_names(IR.format(a=9, b=10, c=3, d=9000))
    for kept in ('name="x.1"', 'names="x.1"', 'names="51_1"', "aten::_convolution/Convolution\"",
                 'name="OpenVINO Runtime"'):
        assert kept in canonical
    renamed = [line.split('name="')[1].split('"')[0] for line in canonical.splitlines() if 'type="' in line][1:]
    assert renamed == ["Constant_0", "Convert_1", "__module.model.0.conv/aten::_convolution/Convolution",
                       "Constant_2", "Result_3"]


def test_two_layers_with_one_counted_name_keep_one_name() -> None:
    canonical = canonical_layer_names(IR.format(a=7, b=8, c=7, d=9))
    assert canonical.count('name="Constant_0"') == 2 and 'name="Result_2"' in canonical
