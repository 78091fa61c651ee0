"""Where the model looked: occlusion maps made by the models that decided, kept beside the decision."""
