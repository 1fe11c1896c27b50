"""Model-shaped parameter sets, one tensor per entry: the twins of bench_optim --model
(bench/bench_optim.cpp), shared by optim_gpu.py and optim_cpu.py."""


def model_shapes(model):
    if model == "gpt2-small":  # 148 tensors, 124,439,808 parameters (tied output embedding)
        shapes = [(50257, 768), (1024, 768)]
        for _ in range(12):
            shapes += [(768,), (768,), (768, 2304), (2304,), (768, 768), (768,), (768,), (768,),
                       (768, 3072), (3072,), (3072, 768), (768,)]
        return shapes + [(768,), (768,)]
    if model == "mlp-1m":  # 10 Linear(316, 316): 20 tensors, 1,001,720 parameters
        return [(316, 316), (316,)] * 10
    raise SystemExit(f"unknown model {model}")
