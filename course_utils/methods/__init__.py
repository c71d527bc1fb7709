"""One small module per method, all on one contract (``base.Method``): a method owns its
networks and returns its loss on a batch from ``training_step(batch)``;
``course_utils.train.train`` runs the rest.

base        the contract, configs, ``save``/``load``     heads       the MLP heads, one class
momentum    EMA target networks (MoCo, BYOL)             supervised  the labelled baseline
pretext     rotation, jigsaw, colourisation, context     simclr      SimCLR (+ shapes augmentations)
moco        MoCo v1/v2 with its queue                    byol        BYOL and SimSiam
mae         the masked autoencoder                       swav        SwAV, Sinkhorn-Knopp, multi-crop
dino        DINO (self-distillation, centre, sharpening)
cmc         CMC (Lab views, one encoder each)             clip        CLIP (image-caption, zero-shot)
cpc         CPC on rows of image patches
"""
