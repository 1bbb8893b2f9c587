import RNNCore
print("placeholder")
