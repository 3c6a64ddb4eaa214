"""LeNet-5 (LeCun et al., 1998), written here for the lung-nodule comparison study."""

import paddle
import paddle.nn as nn


class LeNet5(nn.Layer):
    """Two conv/pool stages and three fully connected layers.

    An adaptive pool before the first FC layer keeps the classic 16x5x5 = 400 features for any
    input size (the original used 32x32; the nodule study uses 64x64 crops).
    """

    def __init__(self, class_num=10, in_channels=3) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2D(in_channels, 6, 5), nn.ReLU(), nn.MaxPool2D(2, 2))
        self.conv2 = nn.Sequential(nn.Conv2D(6, 16, 5), nn.ReLU(), nn.MaxPool2D(2, 2))
        self.pool = nn.AdaptiveAvgPool2D(5)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Sequential(nn.Linear(400, 120), nn.ReLU())
        self.fc2 = nn.Sequential(nn.Linear(120, 84), nn.ReLU())
        self.fc3 = nn.Linear(84, class_num)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.flatten(self.pool(self.conv2(self.conv1(x))))
        return self.fc3(self.fc2(self.fc1(x)))
