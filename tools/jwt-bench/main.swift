import HubAuth
print("placeholder")
