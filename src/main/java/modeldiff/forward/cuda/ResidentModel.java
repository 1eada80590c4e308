package modeldiff.forward.cuda;

import modeldiff.model.Model;

/** A release with every weight uploaded once to the device. */
public final class ResidentModel extends DeviceModel {
    private ResidentModel(Model model, boolean bf16) {
        super(model.config, bf16, model);
    }

    public static ResidentModel upload(Model model, boolean bf16) {
        return building(new ResidentModel(model, bf16), dm -> {
            dm.uploadOuterWeights(model);
            for (int i = 0; i < model.config.numLayers; i++) dm.layers.add(dm.layer(model.layer(i), dm::residentLinear));
            dm.uploadMoe(model);
        });
    }
}
