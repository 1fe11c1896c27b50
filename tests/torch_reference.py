"""PyTorch's side of the equivalence tests (torch_cnn_equivalence.py, torch_random_models.py):
what cutrain-train's flags mean, written in torch."""
import copy

import torch


def torch_epoch(start, make_opt, weight_decay, clip, x, y, batch, dtype):
    """One epoch of PyTorch from a copy of the model `start`, in `dtype`, over x and y (numpy) in
    batches of `batch` rows in order; the optimizer from make_opt(param_groups) with weight decay
    on the weights of dimension > 1 only (cutrain's decay group: not biases, not BatchNorm),
    gradients clipped to norm `clip` unless None. Returns the final state dict."""
    model = copy.deepcopy(start).to(dtype).train()
    decay = [p for p in model.parameters() if p.dim() > 1]
    rest = [p for p in model.parameters() if p.dim() <= 1]
    opt = make_opt([{"params": decay, "weight_decay": weight_decay},
                    {"params": rest, "weight_decay": 0.0}])
    for s in range(0, len(x), batch):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(torch.from_numpy(x[s:s + batch]).to(dtype)),
                                          torch.from_numpy(y[s:s + batch])).backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
    return model.state_dict()
