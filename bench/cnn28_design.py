"""How cnn28's shape was chosen: candidate designs trained on the validation split only (the 50k pool),
scored on the 10k validation images after every epoch; the test set is never loaded. A standalone loop with
the trainer's recipe (SGD nesterov, momentum 0.9, weight decay 5e-4, one-cycle with 25% warm-up, label
smoothing, the trainer's own flip-and-crop augmentation, batch 128). One JSON line per epoch on stdout.

    python bench/cnn28_design.py ARCH WIDTH EPOCHS LR LABEL_SMOOTHING > results/tuning/cnn28-design/NAME.jsonl

ARCH: ``small`` (one conv per stage), ``vgg`` (two at 28x28 and 14x14, one at 7x7), ``mid`` (one at 28x28,
two at 14x14 and 7x7; what ``pipelines.learned.models.cnn28`` became). The stored logs were made on the 2-core
dev machine (see docs/pipelines.md); the first three (small32, vgg16 x2) by this script before it printed ``val_flip``
and knew ``mid``.
"""
import sys, time, json, torch, torch.nn as nn, torch.nn.functional as F
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipelines.datasets import open_dataset, validation_split
from pipelines.learned.trainer import augment
arch, width, epochs, lr, ls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
torch.manual_seed(0)
def blk(i,o): return [nn.Conv2d(i,o,3,padding=1,bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]
w = width
if arch == "mid":
    m = nn.Sequential(*(blk(1,w)+[nn.MaxPool2d(2)]+blk(w,2*w)+blk(2*w,2*w)+[nn.MaxPool2d(2)]+blk(2*w,4*w)+blk(4*w,4*w)+[nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(4*w*9,10)]))
elif arch == "small":
    m = nn.Sequential(*(blk(1,w)+[nn.MaxPool2d(2)]+blk(w,2*w)+[nn.MaxPool2d(2)]+blk(2*w,4*w)+[nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(4*w*9,10)]))
else:
    m = nn.Sequential(*(blk(1,w)+blk(w,w)+[nn.MaxPool2d(2)]+blk(w,2*w)+blk(2*w,2*w)+[nn.MaxPool2d(2)]+blk(2*w,4*w)+[nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(4*w*9,10)]))
m = m.to(memory_format=torch.channels_last)
d = validation_split(open_dataset())
x = torch.from_numpy(d.x_train); y = torch.from_numpy(d.y_train.astype('int64'))
xv = torch.from_numpy(d.x_test); yv = torch.from_numpy(d.y_test.astype('int64'))
bs = 128; steps = epochs * ((len(x)+bs-1)//bs)
opt = torch.optim.SGD(m.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.25)
def prep(xb): return (xb.unsqueeze(1).float()/255).contiguous(memory_format=torch.channels_last)
gen = torch.Generator().manual_seed(1); T = 0
for ep in range(epochs):
    t0 = time.perf_counter(); perm = torch.randperm(len(x))
    for i in range(0, len(x), bs):
        idx = perm[i:i+bs]
        loss = F.cross_entropy(m(prep(augment(x[idx], gen))), y[idx], label_smoothing=ls)
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    T += time.perf_counter()-t0
    m.eval()
    with torch.no_grad():
        lo = [m(prep(xv[i:i+2000])) for i in range(0,len(xv),2000)]
        lf = [m(prep(xv[i:i+2000]).flip(-1)) for i in range(0,len(xv),2000)]
        acc = (torch.cat(lo).argmax(1) == yv).float().mean().item()
        acc2 = ((torch.cat(lo).softmax(1)+torch.cat(lf).softmax(1)).argmax(1) == yv).float().mean().item()
    m.train()
    print(json.dumps({"arch":arch,"w":w,"lr":lr,"ep":ep+1,"val":round(acc,4),"val_flip":round(acc2,4),"train_s":round(T,1)}), flush=True)
