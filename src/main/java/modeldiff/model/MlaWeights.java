package modeldiff.model;

/**
 * One MLA layer's attention parameters by role (see {@link MlaSpec}). With q_lora_rank: {@code qA} [q_lora, H],
 * {@code qANorm} [q_lora], and q_b_proj split per head into {@code qNope} / {@code qRope} (strided row blocks of
 * [heads, qk_head_dim]); without: q_proj split the same way and {@code qA}/{@code qANorm} null. kv_a_proj_with_mqa is
 * split into {@code kvA} (its first kv_lora rows) and {@code kPe} (the last qk_rope rows, one head shared by all);
 * kv_b_proj [heads·(nope + v), kv_lora] per head into {@code kNope} and {@code v}. The output projection is
 * {@link LayerWeights#o()}.
 */
public record MlaWeights(LinearRef qA, NormRef qANorm, LinearRef qNope, LinearRef qRope,
                         LinearRef kvA, LinearRef kPe, NormRef kvANorm, LinearRef kNope, LinearRef v) {
}
