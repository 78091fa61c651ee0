"""The nsfwjs converter's reading of the package's JS modules, and what it refuses, on small
synthetic modules shaped like the package's (tests/integration/test_nsfwjs_conversion.py
converts the real one)."""

import base64

import numpy as np
import pytest
from modstream.core.packages import PackageError
from modstream.models.weights import nsfwjs

# The shape of the package's browserify bundles, minified as they are.
PRELUDE = b'!function(e){"object"==typeof exports&&"undefined"!=typeof module?module.exports=e():this.model=e()}'


def topology_module(layers: str, output: str, weights: str) -> bytes:
    literal = (
        '{modelTopology:{keras_version:"2.2.4",model_config:{class_name:"Model",config:{name:"m",'
        f'layers:[{layers}],input_layers:[["input_1",0,0]],output_layers:[["{output}",0,0]]}}}}}},'
        f'weightsManifest:[{{paths:["group1-shard1of1"],weights:[{weights}]}}]}}'
    )
    return PRELUDE + b"(function(){return function(e,a,n){a.exports=" + literal.encode() + b"}({},{exports:{}})})"


def weights_module(data: bytes) -> bytes:
    return PRELUDE + b'(function(){return function(e,h,n){h.exports="' + base64.b64encode(data) + b'"}})'


INPUT = '{name:"input_1",class_name:"InputLayer",config:{batch_input_shape:[null,224,224,3]},inbound_nodes:[]}'
NOISE = (
    '{name:"jitter",class_name:"GaussianNoise",config:{stddev:.1,trainable:!1},inbound_nodes:[[["input_1",0,0,{}]]]}'
)
ONE_WEIGHT = '{name:"jitter/w",shape:[3],dtype:"float32",quantization:{min:-.5,scale:.25,dtype:"uint8"}}'


def test_a_layer_type_it_does_not_handle_is_refused_by_name() -> None:
    topology = topology_module(f"{INPUT},{NOISE}", "jitter", ONE_WEIGHT)
    with pytest.raises(PackageError, match=r"model\.min\.js: layer 'jitter' is a GaussianNoise, a layer type"):
        nsfwjs.convert(topology, weights_module(bytes([0, 1, 2])))


def test_a_module_that_carries_no_weights_is_refused_naming_the_file() -> None:
    topology = topology_module(INPUT, "input_1", ONE_WEIGHT)
    no_weights = PRELUDE + b"(function(){return function(e,h,n){h.exports=function(){return 1}}})"
    with pytest.raises(PackageError, match=r"group1-shard1of1\.min\.js: no base64 string .* carries no weights"):
        nsfwjs.convert(topology, no_weights)


def test_a_module_that_exports_no_topology_is_refused_naming_the_file() -> None:
    with pytest.raises(PackageError, match=r"model\.min\.js: no object assigned to exports"):
        nsfwjs.convert(weights_module(b"\0"), weights_module(b"\0"))


def test_weights_that_do_not_match_the_manifest_are_refused() -> None:
    topology = topology_module(INPUT, "input_1", ONE_WEIGHT)
    with pytest.raises(PackageError, match=r"group1-shard1of1\.min\.js: holds 4 bytes, the manifest .* describes 3"):
        nsfwjs.convert(topology, weights_module(bytes(4)))


def test_the_minified_literal_is_read_as_its_data() -> None:
    module = b'x.exports={a:!0,b:!1,c:.5,d:-.25,e:1e-3,f:null,"g h":["s\\"q",[2,3.]]};'
    assert nsfwjs.exported_object(module, "m.js") == {
        "a": True,
        "b": False,
        "c": 0.5,
        "d": -0.25,
        "e": 0.001,
        "f": None,
        "g h": ['s"q', [2, 3.0]],
    }


def test_a_literal_that_is_code_is_refused() -> None:
    with pytest.raises(PackageError, match=r"m\.js: the exported literal refers to 'window'"):
        nsfwjs.exported_object(b"x.exports={a:window};", "m.js")


def test_weights_are_dequantised_as_tfjs_does() -> None:
    quantization = {"min": -0.1, "scale": 0.3, "dtype": "uint8"}
    spec = {"name": "w", "shape": [2, 2], "dtype": "float32", "quantization": quantization}
    manifest = [{"paths": ["group1-shard1of1"], "weights": [spec]}]
    (weights,) = nsfwjs.dequantised(manifest, bytes([0, 1, 7, 255])).values()
    # q * scale + min in doubles, then stored as float32 (tfjs-core's decodeWeights)
    expected = np.array([[0 * 0.3 - 0.1, 1 * 0.3 - 0.1], [7 * 0.3 - 0.1, 255 * 0.3 - 0.1]]).astype(np.float32)
    assert weights.dtype == np.float32
    np.testing.assert_array_equal(weights, expected)
