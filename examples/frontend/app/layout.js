import './globals.css';

export const metadata = {
  title: 'Deployer example',
  description: 'Blue-green deployer example frontend',
};

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
