"""A Gemma-2B-shaped model (hidden 2048, MLP 16384, 8 heads, 1 KV head of 256, vocabulary 32000) with random bf16
weights, written with numpy alone (no torch): for timing the Java passes on machines without PyTorch.
Usage: python3 make-gemma-shape.py OUT_DIR LAYERS"""
import numpy as np, json, os, struct, sys
L=int(sys.argv[2]); out=sys.argv[1]; os.makedirs(out, exist_ok=True); V=32000; H=2048; I=16384; NH=8; KV=1; HD=256
cfg=dict(model_type="gemma",architectures=["GemmaForCausalLM"],vocab_size=V,hidden_size=H,intermediate_size=I,num_hidden_layers=L,
 num_attention_heads=NH,num_key_value_heads=KV,head_dim=HD,max_position_embeddings=8192,rms_norm_eps=1e-6,hidden_activation="gelu_pytorch_tanh",
 bos_token_id=2,eos_token_id=1,pad_token_id=0,tie_word_embeddings=True,rope_theta=10000.0,torch_dtype="bfloat16",attention_bias=False,hidden_act="gelu_pytorch_tanh")
json.dump(cfg,open(out+"/config.json","w"),indent=1)
rng=np.random.default_rng(0)
def bf(a): 
    a=a.astype(np.float32).view(np.uint32); return ((a+0x7FFF+((a>>16)&1))>>16).astype(np.uint16)
T={"model.embed_tokens.weight":(V,H),"model.norm.weight":(H,)}
for i in range(L):
    p=f"model.layers.{i}."
    T.update({p+"input_layernorm.weight":(H,),p+"post_attention_layernorm.weight":(H,),p+"self_attn.q_proj.weight":(NH*HD,H),
      p+"self_attn.k_proj.weight":(KV*HD,H),p+"self_attn.v_proj.weight":(KV*HD,H),p+"self_attn.o_proj.weight":(H,NH*HD),
      p+"mlp.gate_proj.weight":(I,H),p+"mlp.up_proj.weight":(I,H),p+"mlp.down_proj.weight":(H,I)})
hdr={}; off=0; blobs=[]
for k,s in T.items():
    a=bf(rng.standard_normal(s,dtype=np.float32)*(0.1 if "norm" in k else 0.02)); b=a.tobytes(); hdr[k]=dict(dtype="BF16",shape=list(s),data_offsets=[off,off+len(b)]); off+=len(b); blobs.append(b)
h=json.dumps(hdr).encode(); h+=b" "*((8-len(h)%8)%8)
with open(out+"/model.safetensors","wb") as f:
    f.write(struct.pack("<Q",len(h))); f.write(h); [f.write(b) for b in blobs]
