package modeldiff.model;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * Where one tensor lives: file, element type, shape and its byte range relative to the start of the file
 * (header already accounted for). With {@code quantized} set it is a dequantized view (see {@link Quantized}): shape
 * and dtype are those of the tensor HF transformers builds on loading, file and byte range those of the stored data.
 */
public record TensorInfo(String name, Path file, DType dtype, long[] shape, long fileOffset, long byteLength, Quantized quantized) {

    public TensorInfo(String name, Path file, DType dtype, long[] shape, long fileOffset, long byteLength) {
        this(name, file, dtype, shape, fileOffset, byteLength, null);
    }

    public long elementCount() {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    public int rank() {
        return shape.length;
    }

    public String shapeString() {
        return Arrays.toString(shape);
    }
}
