package modeldiff.forward;

import java.util.Arrays;

/**
 * Token ids and the position of the first one. Positions are offset + index, so a short input can probe how an
 * implementation handles position 8190 without a context of 8190 tokens (attention still sees only these tokens).
 */
public record ForwardInput(int[] tokens, long positionOffset) {
    public ForwardInput {
        tokens = tokens.clone();
        if (tokens.length == 0) throw new IllegalArgumentException("no tokens");
        if (positionOffset < 0) throw new IllegalArgumentException("negative position offset");
    }

    public int length() {
        return tokens.length;
    }

    public long position(int i) {
        return positionOffset + i;
    }

    @Override
    public String toString() {
        return Arrays.toString(tokens) + (positionOffset == 0 ? "" : " @" + positionOffset);
    }
}
