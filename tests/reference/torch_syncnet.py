"""A PyTorch build of syncnet_python's SyncNetModel (`S`), written from the published architecture;
tests/test_syncnet.py checks it equals the shipped model. The parity reference of
tests/test_syncnet.py and benchmarks/metric_nets.py (torch is imported when called)."""


def syncnet_v2():
  """syncnet_python's SyncNetModel.S in PyTorch, random weights and BatchNorm statistics (eval)."""
  import torch
  from torch import nn

  def conv_bn(conv, features, bn=nn.BatchNorm2d):
    return [conv, bn(features), nn.ReLU()]

  class S(nn.Module):
    def __init__(self):
      super().__init__()
      self.netcnnaud = nn.Sequential(
          *conv_bn(nn.Conv2d(1, 64, 3, 1, 1), 64), nn.MaxPool2d(1, 1),
          *conv_bn(nn.Conv2d(64, 192, 3, 1, 1), 192), nn.MaxPool2d(3, (1, 2)),
          *conv_bn(nn.Conv2d(192, 384, 3, padding=1), 384),
          *conv_bn(nn.Conv2d(384, 256, 3, padding=1), 256),
          *conv_bn(nn.Conv2d(256, 256, 3, padding=1), 256), nn.MaxPool2d(3, 2),
          *conv_bn(nn.Conv2d(256, 512, (5, 4)), 512))
      self.netfcaud = nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(),
                                    nn.Linear(512, 1024))
      self.netfclip = nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(),
                                    nn.Linear(512, 1024))
      bn3 = nn.BatchNorm3d
      self.netcnnlip = nn.Sequential(
          *conv_bn(nn.Conv3d(3, 96, (5, 7, 7), (1, 2, 2), 0), 96, bn3),
          nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
          *conv_bn(nn.Conv3d(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)), 256, bn3),
          nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
          *conv_bn(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, bn3),
          *conv_bn(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, bn3),
          *conv_bn(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, bn3),
          nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
          *conv_bn(nn.Conv3d(256, 512, (1, 6, 6), padding=0), 512, bn3))

    def forward_aud(self, x):  # (N, 1, 13, 20)
      return self.netfcaud(self.netcnnaud(x).flatten(1))

    def forward_lip(self, x):  # (N, 3, 5, 224, 224)
      return self.netfclip(self.netcnnlip(x).flatten(1))

  torch.manual_seed(0)
  model = S()
  with torch.no_grad():
    for module in model.modules():
      if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
        module.weight.uniform_(0.5, 1.5)
        module.bias.normal_(0.0, 0.1)
        module.running_mean.normal_(0.0, 0.1)
        module.running_var.uniform_(0.5, 1.5)
    # Scale the first lip conv so 0..255 pixel inputs keep activations O(1), as trained weights do.
    model.netcnnlip[0].weight.mul_(1 / 128)
  return model.eval()
