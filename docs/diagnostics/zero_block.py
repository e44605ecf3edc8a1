"""How docs/diagnostics/zero.png was made: the tense run with block 2's backward returning zeros,
the mistake a learner makes when a backward pass forgets to pass its gradient on. Not part of the
lab (it patches the model from outside); run from the lab's folder:

    uv run python docs/diagnostics/zero_block.py /tmp/zero
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the lab's scripts

import train
import vit
from minimodel.transformer.block import TransformerBlock

init, backward = vit.TinyViT.__init__, TransformerBlock.backward


def broken_init(self, *args, **kwargs):
    init(self, *args, **kwargs)
    self.blocks[2].broken = True  # every replica too: DataParallel builds them through __init__


def broken_backward(self, dout):
    dx = backward(self, dout)  # the block's own gradients are right ...
    return dx * 0 if getattr(self, "broken", False) else dx  # ... but nothing flows below it


vit.TinyViT.__init__, TransformerBlock.backward = broken_init, broken_backward
train.main(["--out", sys.argv[1]])
