"""Run by the meta-count probe in the target interpreter: transformers' own parameter count of a config.json.

`python meta_count_script.py CONFIG` builds the model on the meta device (no memory, no weights, no download)
and prints one JSON line: {"parameters": N, "class": "MixtralForCausalLM"} or {"unavailable": "why"}.
Stdlib only at the top: transformers and torch are imported inside main, and only when installed.
"""

from __future__ import annotations

import importlib.util
import json
import sys


def main(path: str) -> dict[str, object]:
    if importlib.util.find_spec("transformers") is None:
        return {"unavailable": "transformers is not installed"}
    import torch  # only when transformers is there
    import transformers  # type: ignore[import-not-found]  # optional: only where installed

    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    config = transformers.AutoConfig.for_model(**data)
    errors = []
    for name in ("AutoModelForCausalLM", "AutoModelForImageTextToText", "AutoModel"):
        auto = getattr(transformers, name, None)
        if auto is None:
            continue
        try:
            with torch.device("meta"):
                model = auto.from_config(config)
        except (ValueError, KeyError) as error:  # this auto class does not know the config's model type
            errors.append(f"{name}: {error}")
            continue
        return {"parameters": sum(p.numel() for p in model.parameters()), "class": type(model).__name__}
    return {"unavailable": "transformers builds no model for this config: " + "; ".join(errors)[:300]}


if __name__ == "__main__":
    try:
        print(json.dumps(main(sys.argv[1])))
    except Exception as error:  # one line for the probe, whatever transformers raised (it runs in a child)
        print(json.dumps({"unavailable": f"transformers could not build it: {type(error).__name__}: {error}"[:400]}))
