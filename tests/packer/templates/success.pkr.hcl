variable "message" {
  type    = string
  default = "hello"
}

source "null" "test" {
  communicator = "none"
}

build {
  sources = ["source.null.test"]

  provisioner "shell-local" {
    inline = ["echo ${var.message}", "echo one, two, three"]
  }
}
