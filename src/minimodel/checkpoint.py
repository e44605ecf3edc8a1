"""The checkpoint format: an .npz archive of named float tensors, plus the model's config and
free metadata as two JSON strings. Nothing is pickled, so reading one can never run code.

`read` checks a file member by member (size, zip structure, config, parameter count, names,
shapes, dtypes, finite values) before anything large is decompressed or built, and names the
file and the problem in one line.
"""

import json
import zipfile
import zlib

import numpy as np

from minimodel.files import LabError, check_regular, printable

MAX_PARAMETERS = 20_000_000  # 80 MB in float32: far above any lab config, far below a laptop
MAX_BYTES = 8 * MAX_PARAMETERS + 2**20


def write(f, tensors, config, meta=None):
    """Write {name: array}, the config (a JSON-able dict) and meta to the file object f."""
    np.savez(f, **tensors, config=np.array(json.dumps(config)),
             meta=np.array(json.dumps(meta or {})))


def read(path, make_config, count, build):
    """Read a checkpoint -> (model, meta). make_config(dict) -> config (ValueError, TypeError or
    KeyError if it does not fit), count(config) -> its parameter count, build(config) -> a model
    with named_parameters(), whose tensors are filled from the file.

    Raises LabError naming the file and what is wrong: unreadable or not a regular file, not a
    checkpoint, a config too large to build, or tensors whose names, shapes or values (NaN,
    inf) do not fit.
    """
    shown = printable(path)
    retrain = "retrain with train.py"
    try:
        check_regular(path, MAX_BYTES)
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":  # an .npz is a zip archive
                raise LabError(f"{shown}: not a checkpoint (.npz) file; point to one "
                               f"train.py wrote")
        with zipfile.ZipFile(path) as z:
            sizes = {i.filename.removesuffix(".npy"): i.file_size for i in z.infolist()}
        if sizes.get("config", 0) + sizes.get("meta", 0) > 2**20:
            raise LabError(f"{shown}: its config and meta take over 1 MB; {retrain}")
        with np.load(path, allow_pickle=False) as f:
            stored, meta = (json.loads(str(f[k])) for k in ("config", "meta"))
            if not isinstance(stored, dict) or not isinstance(meta, dict):
                raise LabError(f"{shown}: config and meta must be JSON objects; {retrain}")
            cfg = make_config(stored)
            if count(cfg) > MAX_PARAMETERS:
                raise LabError(f"{shown}: its config asks for {count(cfg):,} parameters (at "
                               f"most {MAX_PARAMETERS:,}); {retrain}")
            model = build(cfg)
            want = {name: p for name, p, _ in model.named_parameters()}
            if set(sizes) != set(want) | {"config", "meta"}:
                odd = sorted(set(sizes) ^ (set(want) | {"config", "meta"}))
                raise LabError(f"{shown}: tensors do not fit the config: "
                               f"{', '.join(map(printable, odd[:5]))}")
            for name, p in want.items():
                if sizes[name] > 8 * p.size + 1024:  # float64 and the .npy header at most
                    raise LabError(f"{shown}: tensor {name} takes {sizes[name]:,} bytes, "
                                   f"expected {p.shape}; {retrain}")
                a = f[name]
                if a.shape != p.shape or a.dtype.kind != "f":
                    raise LabError(f"{shown}: tensor {name} is {a.dtype}{a.shape}, "
                                   f"expected float{p.shape}")
                if not np.isfinite(a).all():
                    raise LabError(f"{shown}: tensor {name} holds NaN or infinite values "
                                   f"(a diverged run?); {retrain}")
                p[...] = a
    except FileNotFoundError:
        raise LabError(f"{shown}: no such checkpoint; run train.py first") from None
    except ValueError as e:
        if isinstance(e, LabError):
            raise
        if "allow_pickle" in str(e):
            raise LabError(f"{shown}: holds Python objects, which are never loaded (they "
                           f"could run code); use a checkpoint train.py wrote") from None
        raise LabError(f"{shown}: not a TinyViT checkpoint (bad config: {printable(e)}); "
                       f"{retrain}") from None
    except (KeyError, TypeError, RecursionError) as e:
        raise LabError(f"{shown}: not a TinyViT checkpoint (bad config: {printable(e)}); "
                       f"{retrain}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise LabError(f"{shown}: truncated or corrupt checkpoint ({printable(e)}); "
                       f"{retrain}") from None
    return model, meta
