"""Depthwise filters learned vs sampled, as the thesis's Fig. 3.8 (§3.1): a ConvMixer's trained filters, filters drawn
from their empirical covariance (covariance transfer, eqs. 3.3–3.4), filters from the closed-form construction
(eqs. 3.5–3.11), and, last, the construction's filters after training.

    python experiments/filter_pictures.py --learned RUN --trained RUN --out docs/figures/convmixer-k9

``--learned``: a run trained from the default init (e.g. ``mnist-convmixer-reference-k9``'s cell); ``--trained``: a
run trained from the covariance init. Both are run folders of ``conv_filters.py``; the construction is built from the
learned run's config. Writes ``conv_filters.png``, ``conv_covariance.png`` and ``summary.md`` (via ``hf-mimetic
inspect``'s drawing code).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from transformers import AutoModelForImageClassification

from hf_mimetic import transfer_filter_covariance
from hf_mimetic.inspect.report import Source, inspect_models
from hf_mimetic.loading import load_saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learned", required=True, help="run folder trained from the default init")
    parser.add_argument("--trained", required=True, help="run folder trained from the covariance init")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--layers", type=int, nargs="+", default=[0, 7])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    learned = load_saved(args.learned)
    sampled = AutoModelForImageClassification.from_config(learned.config)
    transfer_filter_covariance(learned, sampled)
    constructed = AutoModelForImageClassification.from_config(learned.config, mimetic_init=True)
    sources = [Source("learned", learned), Source("sampled from learned Σ", sampled),
               Source("construction", constructed), Source("construction, trained", load_saved(args.trained))]  # fmt: skip
    inspect_models(sources, args.out, layers=args.layers)


if __name__ == "__main__":
    main()
